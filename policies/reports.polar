# Community reports — anyone may submit one (also anonymously) and follow it
# with the receipt code.
#
# Who sees them: immigration all of the office area; police and military those located in
# their jurisdiction; district officials and neighbourhood heads the reports
# they submitted themselves; the public only the status, by receipt code.
# Invariant: the reporter's contact and the linked foreigner are immigration's.

allow(actor: Principal, "read", report: Report) if
    (immigration(actor.role) or security_partner(actor.role)) and
    located_in(report, actor);
# "Own" is the same issuer, the same role and the same subject: a subject is only unique
# within its issuer, and one person acting in two roles is two submitters.
allow(actor: Principal, "read", report: Report) if
    actor.role in ["district", "neighbourhood"] and
    report.submitter_issuer = actor.issuer and
    report.submitter_role = actor.role and
    report.submitted_by = actor.subject;

readable(role, "Report", field) if
    immigration(role) and
    field in ["reporterContact", "foreigner", "assignedOfficer", "receiptCode"];

readable(role, "Report", field) if
    (immigration(role) or security_partner(role) or role in ["district", "neighbourhood"]) and
    field in ["id", "category", "text", "areaCode", "area", "status", "createdAt", "updatedAt",
              "redactedFields"];

# Submitters keep their own receipt code.
readable(role, "Report", field) if
    role in ["district", "neighbourhood"] and
    field in ["receiptCode"];

# No linking (main.polar, location_k_minimum): the linked foreigner is immigration's, so for
# every other role a report lies no finer than an area that leaves 5 candidates, pooled
# (police listed the foreigners of a report's RT; where the RT held one, that was the
# report's foreigner; and counting an RW's RTs struck off those shown on their own).
# Reporters write where ("RT 003/RW 02, Kelurahan …"): the text is shown only where the
# report's own area is the one shown.
hidden_link_location("Report", "foreigner", 5);
place_text("Report", "text");

readable(role, "ReportConnection", field) if
    (immigration(role) or security_partner(role) or role in ["district", "neighbourhood"]) and
    field in ["nodes", "pageInfo"];

# What the submitter gets back, and what anyone holding a receipt code may read: the
# status, nothing else. `updatedAt` is not status: it moves whenever the office works on
# the report (an officer assigned, a note of triage), so it would time the office's work
# for whoever holds the code. Immigration, who read the report itself, may read it here.
readable(_role, "ReportReceipt", field) if field in ["receiptCode", "status"];
readable(_role, "ReportStatus", field) if field in ["receiptCode", "status"];
readable(role, "ReportStatus", field) if
    immigration(role) and
    field in ["updatedAt"];
