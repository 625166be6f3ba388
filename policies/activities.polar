# Officers and their field activities (document checks, home visits, report
# follow-ups, joint operations).
#
# Who sees them: an immigration officer the activities they recorded in their
# office's area; the supervisor all of them in the office area; police and
# military the joint operations located in their jurisdiction — without the
# subject's identity and without geo points. Officers: the staff of the office
# serving the actor's jurisdiction, never another office's.
# Invariant: partners never learn whom an officer checked nor where exactly.

# Officer ids are per office, so "own" also needs the activity inside the office area.
allow(actor: Principal, "read", activity: Activity) if
    actor.role = "immigration_officer" and
    activity.officer_id = actor.officer_id and
    located_in(activity, actor);
allow(actor: Principal, "read", activity: Activity) if
    actor.role = "immigration_supervisor" and
    located_in(activity, actor);
allow(actor: Principal, "read", activity: Activity) if
    security_partner(actor.role) and
    activity.joint_operation = true and
    located_in(activity, actor);

readable(role, "Activity", field) if
    immigration(role) and
    field in ["subject", "latitude", "longitude", "notes", "report"];

readable(role, "Activity", field) if
    (immigration(role) or security_partner(role)) and
    field in ["id", "kind", "occurredAt", "areaCode", "area", "jointOperation", "officer",
              "redactedFields"];

# No linking (main.polar, location_k_minimum): the subject is immigration's, and a followed-up
# report leads to its linked foreigner; for every other role an activity lies no finer than
# an area that leaves 5 candidates, pooled (a home visit happens at the subject's home),
# without a geo point, and its notes only where its own area is the one shown.
hidden_link_location("Activity", "subject", 5);
hidden_link_location("Activity", "report", 5);
place_text("Activity", "notes");

readable(role, "ActivityConnection", field) if
    (immigration(role) or security_partner(role)) and
    field in ["nodes", "pageInfo"];

# Officers are public servants: partners see who led a joint operation.
# An immigration office serves one city: the officers of the actor's city's office.
allow(actor: Principal, "read", officer: Officer) if
    (immigration(actor.role) or security_partner(actor.role)) and
    officer.office_area_code = actor.city;

readable(role, "Officer", field) if
    (immigration(role) or security_partner(role)) and
    field in ["id", "name", "rank", "unit", "redactedFields"];
