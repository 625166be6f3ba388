# Residences — where a foreigner lives (address, geo point, area down to RT).
#
# Residences are reached only through a foreigner, so their rows follow the
# foreigner's scope (foreigners.polar). The history of former addresses is an
# identity-grade field of Foreigner (immigration only): it may lie outside a
# partner's jurisdiction.
# Invariant: the district government sees area codes, never a street address
# or a geo point.

readable(role, "Residence", field) if
    address_reader(role) and
    field in ["streetAddress", "latitude", "longitude"];

readable(role, "Residence", field) if
    profile_reader(role) and
    field in ["id", "areaCode", "area", "kecamatanCode", "kelurahanCode", "rwCode", "rtCode",
              "validFrom", "validTo", "redactedFields"];
