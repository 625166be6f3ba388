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
allow(actor: Principal, "read", report: Report) if
    actor.role in ["district", "neighbourhood"] and
    report.submitted_by = actor.subject;

readable(role, "Report", field) if
    immigration(role) and
    field in ["reporterContact", "foreigner", "assignedOfficer", "receiptCode"];

readable(role, "Report", field) if
    (immigration(role) or security_partner(role) or role in ["district", "neighbourhood"]) and
    field in ["id", "category", "text", "areaCode", "area", "status", "createdAt", "updatedAt"];

# Submitters keep their own receipt code.
readable(role, "Report", field) if
    role in ["district", "neighbourhood"] and
    field in ["receiptCode"];

readable(role, "ReportConnection", field) if
    (immigration(role) or security_partner(role) or role in ["district", "neighbourhood"]) and
    field in ["nodes", "pageInfo"];

# What the submitter gets back, and what anyone holding a receipt code may read.
readable(_role, "ReportReceipt", field) if field in ["receiptCode", "status"];
readable(_role, "ReportStatus", field) if field in ["receiptCode", "status", "updatedAt"];
