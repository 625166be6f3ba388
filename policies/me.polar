# Who am I (`sisadaMe`) — every caller may read their own role and jurisdiction.

readable(_role, "SisadaMe", field) if field in ["role", "area", "officerId"];
