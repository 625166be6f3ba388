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

# Demo defaults for `sisada token ROLE` without --area: the level of the area
# picked inside the demo kecamatan (Setiabudi), and which kind of officer's id is set.
demo_jurisdiction("immigration_officer", "city");
demo_jurisdiction("immigration_supervisor", "city");
demo_jurisdiction("police", "kecamatan");
demo_jurisdiction("military", "kecamatan");
demo_jurisdiction("district", "kecamatan");
demo_jurisdiction("neighbourhood", "rt");
demo_officer("immigration_officer", "field");
demo_officer("immigration_supervisor", "supervisor");
