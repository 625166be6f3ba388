# Root fields — which queries and mutations each role may call at all.
# A root field not listed for a role is a FORBIDDEN error for that role.

# Everyone, also anonymous callers.
readable(_role, "Query", field) if
    field in ["sisadaMe", "area", "areas", "reportStatus"];
readable(_role, "Mutation", field) if
    field in ["submitReport"];

# Lists and look-ups of foreigners: everyone who may read a profile.
readable(role, "Query", field) if
    profile_reader(role) and
    field in ["foreigner", "foreigners"];

# Field check by document number: immigration only (it searches identity data).
readable(role, "Query", field) if
    immigration(role) and
    field in ["checkForeigner"];

# Reports: immigration, partners in their jurisdiction, submitters their own.
readable(role, "Query", field) if
    (immigration(role) or security_partner(role) or role in ["district", "neighbourhood"]) and
    field in ["report", "reports"];

# Officers and their field activity.
readable(role, "Query", field) if
    (immigration(role) or security_partner(role)) and
    field in ["officer", "officers", "activities"];

# Field work is immigration's; triage of reports is the supervisor's (head of office).
readable(role, "Mutation", field) if
    immigration(role) and
    field in ["recordActivity"];
readable(role, "Mutation", field) if
    role = "immigration_supervisor" and
    field in ["updateReport"];

# Federation: a supergraph router resolves entities through `_entities`; every
# entity is reloaded under the caller's row scope, so this opens no new path.
readable(_role, "Query", field) if
    field in ["_service", "_entities"];
readable(_role, "_Service", field) if field in ["sdl"];
