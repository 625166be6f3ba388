# Who am I — every caller may read their own role and jurisdiction.

readable(_role, "Me", field) if field in ["role", "area", "officerId"];
