# Entry points. Deny is the default: nothing is allowed unless a rule holds.
#
#   allow_field(actor, "read", TypeName, fieldName)
#       may the actor read this GraphQL field? Root fields ("Query", "Mutation",
#       "Subscription") answer whether the actor may call them at all; a denied
#       root field is a FORBIDDEN error, a denied object field resolves to null.
#   row_scope(actor, TypeName, scope)
#       which rows of a type the actor may see, as named scopes that the data
#       layer turns into SQL conditions (see "Row scopes" below). No scope, no rows.
#   count_cell_minimum(actor, n)
#       counts below n are suppressed (returned as null) for this actor.
#   allow_schema_hints(actor)
#       the actor's error messages may suggest field names ("Did you mean …?").
#
# Row scopes (the only words the data layer understands; anything else matches nothing):
#   "all"                    every row (no default policy uses it)
#   "jurisdiction"           rows located inside the actor's area (token claim `area`);
#                            for immigration staff that area is the office's city
#   "own_officer"            activities recorded by the actor's own officer id, inside
#                            the actor's area (officer ids are per office)
#   "serving_jurisdiction"   officers of the office whose area contains the actor's area
#   "own_submitted"          reports the actor submitted
#   "joint_in_jurisdiction"  joint operations located inside the actor's area
#   "kecamatan_level"        areas of the kecamatan level only (public statistics)

allow_field(actor: Principal, "read", type_name: String, field: String) if
    readable(actor.role, type_name, field);

# Paging plumbing carries no data of its own: readable by whoever reaches it.
readable(_role, "PageInfo", field) if field in ["endCursor", "hasNextPage"];
readable(_role, "CountBucket", field) if field in ["key", "count"];
