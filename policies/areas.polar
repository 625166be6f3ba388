# Areas — the tree city > kecamatan > kelurahan > RW > RT, with foreigner counts.
#
# Who sees them: immigration every area of the office (its jurisdiction); police, military,
# district and neighbourhood heads the areas inside their own jurisdiction
# (a neighbourhood head: own RW/RT, total only); the public the kecamatan level
# only, totals only, with cells below 5 suppressed.
# Invariant: counts are never finer than this allows — the public gets no city
# total and no breakdown, so no suppressed cell can be recovered by differencing.

allow(actor: Principal, "read", area: Area) if
    (profile_reader(actor.role) or actor.role = "neighbourhood") and
    located_in(area, actor);
allow(actor: Principal, "read", area: Area) if
    actor.role = "public" and
    area.level = "kecamatan";

readable(role, "Area", field) if
    role in ["immigration_officer", "immigration_supervisor", "police", "military", "district",
             "neighbourhood", "public"] and
    field in ["code", "name", "level", "foreignerCount", "redactedFields"];

readable(role, "Area", field) if
    profile_reader(role) and
    field in ["parent", "children", "byNationality", "byPermitType"];

readable(role, "Area", field) if
    role = "neighbourhood" and
    field in ["parent", "children"];

count_cell_minimum(actor: Principal, 5) if actor.role = "public";
