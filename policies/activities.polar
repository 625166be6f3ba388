# Officers and their field activities (document checks, home visits, report
# follow-ups, joint operations).
#
# Who sees them: an immigration officer the activities they recorded in their
# office's area; the supervisor all of them in the office area; police and
# military the joint operations located in their jurisdiction — without the
# subject's identity and without geo points. Officers: the staff of the office
# serving the actor's jurisdiction, never another office's.
# Invariant: partners never learn whom an officer checked nor where exactly.

row_scope(actor: Principal, "Activity", "own_officer") if actor.role = "immigration_officer";
row_scope(actor: Principal, "Activity", "jurisdiction") if actor.role = "immigration_supervisor";
row_scope(actor: Principal, "Activity", "joint_in_jurisdiction") if security_partner(actor.role);

readable(role, "Activity", field) if
    immigration(role) and
    field in ["subject", "latitude", "longitude", "notes", "report"];

readable(role, "Activity", field) if
    (immigration(role) or security_partner(role)) and
    field in ["id", "kind", "occurredAt", "areaCode", "area", "jointOperation", "officer"];

readable(role, "ActivityConnection", field) if
    (immigration(role) or security_partner(role)) and
    field in ["nodes", "pageInfo"];

# Officers are public servants: partners see who led a joint operation.
row_scope(actor: Principal, "Officer", "serving_jurisdiction") if
    immigration(actor.role) or security_partner(actor.role);

readable(role, "Officer", field) if
    (immigration(role) or security_partner(role)) and
    field in ["id", "name", "rank", "unit"];
