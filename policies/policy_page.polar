# The policy page (/policy) — the access matrix generated from these files, and the
# files themselves.
#
# Who may open it: the immigration supervisor (head of office) and the auditor. The policy
# is not secret — the gateway setting SISADA_POLICY_PAGE_PUBLIC opens the page to every
# caller — but by default it is for those who answer for it, not a map of the office
# handed to anyone who asks.
# Invariant: the page shows rules only, never a record; it depends on the caller's role
# alone (asked once per role when a policy is loaded, like the field rules).
#
#   allow_policy_page(actor)
#       may the actor open /policy (the matrix as HTML and JSON, and the .polar sources)?

allow_policy_page(actor: Principal) if
    actor.role in ["immigration_supervisor", "auditor"];
