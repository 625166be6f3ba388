# Foreigners — the people the office supervises, and their stay permits.
#
# Who sees them: foreigners whose current residence lies inside the actor's
# jurisdiction — for immigration staff the office area (the city), for police,
# military and the district government their own kecamatan (a Polres: its city).
# Neighbourhood heads and the public see no foreigner rows at all (only counts,
# see areas.polar).
# Invariant: nobody outside immigration ever reads identity — name, passport
# number, birth date, photo, permit number.

allow(actor: Principal, "read", foreigner: Foreigner) if
    profile_reader(actor.role) and
    located_in(foreigner, actor);

# Identity: immigration only.
readable(role, "Foreigner", field) if
    immigration(role) and
    field in ["fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber",
              "permits", "residenceHistory"];

# Profile: everyone who may see the row.
readable(role, "Foreigner", field) if
    profile_reader(role) and
    field in ["id", "nationality", "sex", "ageBand", "permitType", "permitStatus",
              "permitExpiresOn", "sponsorType", "residence", "redactedFields"];

# Stay permits, reached through a foreigner.
readable(role, "StayPermit", field) if
    immigration(role) and
    field in ["number", "sponsorName"];
readable(role, "StayPermit", field) if
    profile_reader(role) and
    field in ["id", "permitType", "status", "issuedOn", "expiresOn", "sponsorType",
              "redactedFields"];

# Result of a field check by document number (immigration only, see queries.polar).
readable(role, "ForeignerCheck", field) if
    immigration(role) and
    field in ["documentNumber", "registered", "foreigner"];

readable(role, "ForeignerConnection", field) if
    profile_reader(role) and
    field in ["nodes", "pageInfo", "totalCount"];
