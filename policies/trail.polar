# The access trail — which reads of personal data are recorded, and why they were made.
#
# SPEC rule 6: every read of identity data is recorded (who, when, which record, which
# fields, the stated purpose) in an append-only, tamper-evident trail, and if the trail
# cannot be written the identity is not returned. UU 27/2022 limits processing to a
# stated purpose: a reader names one (the `Sisada-Purpose` request header, or `purpose`
# in a WebSocket's connection_init), and the purpose travels with every entry.
#
# Invariant: a value of a recorded field leaves the gateway only after its entry is
# written; a role that must state a purpose reads recorded fields only with one it may
# state (otherwise they are null, with PURPOSE_REQUIRED).

# Recorded fields: a response carrying a non-null value of one of these writes an entry
# for its record (type and id), listing the fields returned — never their values.
recorded_field("Foreigner", field) if
    field in ["fullName", "passportNumber", "birthDate", "photoUrl", "permitNumber"];
recorded_field("StayPermit", field) if
    field in ["number", "sponsorName"];

# Purposes a reader may state.
purpose("field_check");          # checking a foreigner met in the field
purpose("report_follow_up");     # following up a community report
purpose("permit_supervision");   # supervising stay permits (expiry, sponsors)

# Who may state which purpose.
may_state_purpose(role, name) if
    immigration(role) and
    name in ["field_check", "report_follow_up", "permit_supervision"];

# Roles that read recorded fields only under a stated purpose they may state.
purpose_required(role) if immigration(role);

# Who reads the trail — entries name records and field names, never values: the head of
# office the entries of its own office's readers (their area lies in the supervisor's
# city), the auditor all of them. Nobody else reads it at all.
allow(actor: Principal, "read", entry: AccessTrailEntry) if
    actor.role = "immigration_supervisor" and
    entry.office_code = actor.city;
allow(actor: Principal, "read", _entry: AccessTrailEntry) if
    actor.role = "auditor";

trail_reader(role) if role in ["immigration_supervisor", "auditor"];

readable(role, "Query", "accessTrail") if trail_reader(role);
readable(role, "AccessTrailConnection", field) if
    trail_reader(role) and
    field in ["nodes", "pageInfo"];
readable(role, "AccessTrailEntry", field) if
    trail_reader(role) and
    field in ["seq", "at", "issuer", "subject", "role", "area", "officerId", "recordType",
              "recordId", "fields", "purpose", "requestId", "documentHash", "clientAddress"];
# The operation's name is the caller's free text (a name can spell a passport number):
# the head of office reads it, the auditor — who reads no personal data — does not.
readable("immigration_supervisor", "AccessTrailEntry", "operationName");
