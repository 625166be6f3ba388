# Entry points. Deny is the default: nothing is allowed unless a rule holds.
#
#   allow(actor, "read", record)
#       may the actor see this row at all? `record` is a Foreigner, Report, Activity,
#       Officer or Area (policies/resources.py lists the fields a rule may compare).
#       The gateway never asks this per record: Oso's data filtering turns these rules
#       into a SQL condition once per role and jurisdiction level, so out-of-scope rows
#       never leave the database. Rows a role has no rule for do not exist for it.
#   allow_field(actor, "read", TypeName, fieldName)
#       may the actor read this GraphQL field? Root fields ("Query", "Mutation",
#       "Subscription") answer whether the actor may call them at all; a denied
#       root field is a FORBIDDEN error, a denied object field resolves to null.
#       Field rules depend on the role only (below: `readable`), so they are compiled
#       into a set per role.
#   allow_field(actor, "read", record, fieldName)
#       the same question about one record: its row is visible and its type's field
#       readable. For applications that hold a record; the gateway uses the two parts.
#   count_cell_minimum(actor, n)
#       counts below n are suppressed (returned as null) for this actor.
#   location_k_minimum(actor, TypeName, k)
#       no linking (SPEC rule 7): the actor sees where a record of this type lies no finer
#       than an enclosing area that leaves k candidates (pooled k, see below).
#   allow_schema_hints(actor)
#       the actor's error messages may suggest field names ("Did you mean …?").
#
# Row rules may compare a record's fields with constants, with actor.role and with the
# actor's claims (actor.area, actor.city, actor.officer_id, actor.issuer, actor.subject),
# and branch on actor.role and actor.area_level. Anything else (a claim tested on its
# own, two fields compared, a relation) is refused when the policy loads; a field the
# data layer has no column for matches no row and fails `sisada policy-check`.

allow_field(actor: Principal, "read", type_name: String, field: String) if
    readable(actor.role, type_name, field);

allow_field(actor: Principal, "read", record: Foreigner, field: String) if
    allow(actor, "read", record) and allow_field(actor, "read", "Foreigner", field);
allow_field(actor: Principal, "read", record: Report, field: String) if
    allow(actor, "read", record) and allow_field(actor, "read", "Report", field);
allow_field(actor: Principal, "read", record: Activity, field: String) if
    allow(actor, "read", record) and allow_field(actor, "read", "Activity", field);
allow_field(actor: Principal, "read", record: Officer, field: String) if
    allow(actor, "read", record) and allow_field(actor, "read", "Officer", field);
allow_field(actor: Principal, "read", record: Area, field: String) if
    allow(actor, "read", record) and allow_field(actor, "read", "Area", field);

# Jurisdiction: a located record (a foreigner's current residence, a report, an
# activity, an area) lies inside the actor's area when its code at the level of
# that area is the area. An actor without an area has no jurisdiction.
located_in(record, actor: Principal) if
    actor.area_level = "city" and record.city_code = actor.area;
located_in(record, actor: Principal) if
    actor.area_level = "kecamatan" and record.kecamatan_code = actor.area;
located_in(record, actor: Principal) if
    actor.area_level = "kelurahan" and record.kelurahan_code = actor.area;
located_in(record, actor: Principal) if
    actor.area_level = "rw" and record.rw_code = actor.area;
located_in(record, actor: Principal) if
    actor.area_level = "rt" and record.rt_code = actor.area;

# `redactedFields` on every domain type lists the fields of that type the actor may not
# read (schema/redaction.py): hidden told apart from unknown behind supergraph routers,
# which drop `extensions.redacted`. It is listed with the fields of every role that may
# read the type; it says only what this policy already publishes.

# Paging plumbing carries no data of its own: readable by whoever reaches it.
readable(_role, "SisadaPageInfo", field) if field in ["endCursor", "hasNextPage"];
readable(_role, "SisadaCountBucket", field) if field in ["key", "count"];

# No linking (SPEC rule 7). A record that links a person (a report's linked foreigner, an
# activity's subject) must not single that person out by where it lies. A resource file
# declares `hidden_link_location(Type, linkField, k)`; an actor who may not read that link
# field sees the location of *every* record of the type coarsened — whether or not the
# record has a link, so precision says nothing about the hidden field — as follows:
#   - areaCode and area: pooled k, bottom-up as of the record's day. The record's RT where
#     k foreigners live in it; else its RW where the RW's pool (its residents outside RTs
#     shown on their own) holds k; else the kelurahan, kecamatan, city by the same rule
#     (pool: residents outside sub-areas shown on their own); null when not even the city's
#     pool holds k. A reader who strikes off every resident whose own place would be shown
#     as another area still has k candidates. Pools count current residents who lived there
#     by the day; which sub-areas resolve on their own is judged on all who lived there that
#     day, so a record only ever gets coarser (resolvers/precision.py);
#   - a geo point (latitude, longitude): null, it is finer than any area;
#   - free text that may name the place (`place_text(Type, field)`): null unless the
#     record's own area is the one shown.
# An actor who may read every link of the type sees exact locations.
location_k_minimum(actor: Principal, type_name: String, k: Integer) if
    hidden_link_location(type_name, link, k) and
    not allow_field(actor, "read", type_name, link);
