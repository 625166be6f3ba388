# Roles — who the office knows, and the groups the other policy files use.
#
# A token whose `role` claim is not listed here is rejected. A caller with no
# token is the anonymous role. Jurisdiction comes from the token's `area`
# claim (an area code: city, kecamatan, kelurahan, RW or RT).

role("immigration_officer");
role("immigration_supervisor");
role("police");
role("military");
role("district");
role("neighbourhood");
role("public");
role("auditor");

anonymous_role("public");

# Immigration staff: the only roles that ever see a foreigner's identity.
immigration(role) if role in ["immigration_officer", "immigration_supervisor"];

# Security partners (Polsek/Polres, Koramil/Kodim): profile and address, never identity.
security_partner(role) if role in ["police", "military"];

# Roles that see the non-identifying profile of a foreigner.
profile_reader(role) if immigration(role) or security_partner(role) or role = "district";

# Schema hints in error messages name fields: for immigration's own developers only.
allow_schema_hints(actor: Principal) if immigration(actor.role);

# Who may read a street address or a geo point.
address_reader(role) if immigration(role) or security_partner(role);

# Jurisdiction: the levels of the tree a token of each role may carry in its `area`
# claim. A role listed here must carry an area of one of its levels; a role not listed
# (the auditor: policy and trail, no rows by place) must carry none. Any other token is
# refused (401): a district token with the city's code, or a neighbourhood head's with a
# kecamatan's, never reaches a rule.
jurisdiction_level("immigration_officer", "city");
jurisdiction_level("immigration_supervisor", "city");
jurisdiction_level("police", "kecamatan");   # Polsek
jurisdiction_level("police", "city");        # Polres
jurisdiction_level("military", "kecamatan"); # Koramil
jurisdiction_level("military", "city");      # Kodim
jurisdiction_level("district", "kecamatan");
jurisdiction_level("neighbourhood", "rw");
jurisdiction_level("neighbourhood", "rt");

# Officers: a token of these roles must name, in `officer_id`, an officer of this kind in
# the office's officer table ("field" officer or "supervisor"); a token of any other role
# must name none. Any other token is refused (401).
officer_kind("immigration_officer", "field");
officer_kind("immigration_supervisor", "supervisor");

# Demo defaults for `sisada token ROLE` without --area: the level of the area
# picked inside the demo kecamatan (Setiabudi); the officer is the first of its kind.
demo_jurisdiction("immigration_officer", "city");
demo_jurisdiction("immigration_supervisor", "city");
demo_jurisdiction("police", "kecamatan");
demo_jurisdiction("military", "kecamatan");
demo_jurisdiction("district", "kecamatan");
demo_jurisdiction("neighbourhood", "rt");

# Demo data: who submitted the seeded reports that are not the public's — the role, the
# level of its area, and the share of all reports in percent.
demo_submitter("neighbourhood", "rt", 20);
demo_submitter("district", "kecamatan", 10);
