# Live feeds (subscriptions) — officers' field activity, community reports and the
# supervisor's live map, pushed over WebSocket (graphql-transport-ws) as they happen.
#
# Who may subscribe: the immigration supervisor to every activity (with geo) and to the
# live map of officers' positions; an immigration officer to their own activities; both to
# reports; police and military to the joint operations and the reports in their own
# jurisdiction. Nobody else.
# Invariant: an event is a record like any other. Which events reach a subscriber is its
# type's row rule (activities.polar, reports.polar), evaluated on the event's record from
# the very filter queries use; what the event shows is that type's field rules and
# location precision. Nothing here widens either: these rules only open the feeds and the
# envelopes around the records.

readable(role, "Subscription", field) if
    (immigration(role) or security_partner(role)) and
    field in ["activityRecorded", "reportUpdated"];
readable(role, "Subscription", field) if
    role = "immigration_supervisor" and
    field in ["officerPositions"];

# The envelopes: an event id (to resume with `after`) and the record.
readable(role, "ActivityEvent", field) if
    (immigration(role) or security_partner(role)) and
    field in ["eventId", "activity"];
readable(role, "ReportEvent", field) if
    (immigration(role) or security_partner(role)) and
    field in ["eventId", "report"];
readable(role, "OfficerPosition", field) if
    role = "immigration_supervisor" and
    field in ["eventId", "officer", "activity"];
