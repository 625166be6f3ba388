"""The real administrative tree of Kota Administrasi Jakarta Selatan (Kemendagri codes).

Kecamatan codes are the official ones (`31.74.01` Tebet … `31.74.10` Pesanggrahan).
Kelurahan are numbered `31.74.NN.1001`, `.1002`, … in the order listed here, which
follows the official numbering. RW and RT below the kelurahan are not public
reference data; the synthetic seed generates them.

The centre points are approximate (good to about a kilometre) and only serve to place
synthetic geo points plausibly inside the right part of the city.
"""

from __future__ import annotations

from dataclasses import dataclass

CITY_CODE = "31.74"
CITY_NAME = "Kota Administrasi Jakarta Selatan"


@dataclass(frozen=True)
class Kelurahan:
    code: str
    name: str


@dataclass(frozen=True)
class Kecamatan:
    code: str
    name: str
    latitude: float
    longitude: float
    kelurahan: tuple[Kelurahan, ...]


# (kecamatan number, name, centre lat, centre lon, kelurahan names in official order)
_RAW: tuple[tuple[int, str, float, float, tuple[str, ...]], ...] = (
    (1, "Tebet", -6.2265, 106.8535, (
        "Tebet Barat", "Tebet Timur", "Kebon Baru", "Bukit Duri", "Manggarai",
        "Manggarai Selatan", "Menteng Dalam",
    )),
    (2, "Setiabudi", -6.2155, 106.8295, (
        "Setiabudi", "Karet", "Karet Semanggi", "Karet Kuningan", "Kuningan Timur",
        "Menteng Atas", "Pasar Manggis", "Guntur",
    )),
    (3, "Mampang Prapatan", -6.2435, 106.8240, (
        "Mampang Prapatan", "Bangka", "Pela Mampang", "Tegal Parang", "Kuningan Barat",
    )),
    (4, "Pasar Minggu", -6.2830, 106.8420, (
        "Pasar Minggu", "Jati Padang", "Cilandak Timur", "Ragunan", "Pejaten Timur",
        "Pejaten Barat", "Kebagusan",
    )),
    (5, "Kebayoran Lama", -6.2440, 106.7770, (
        "Kebayoran Lama Utara", "Kebayoran Lama Selatan", "Grogol Utara", "Grogol Selatan",
        "Cipulir", "Pondok Pinang",
    )),
    (6, "Cilandak", -6.2860, 106.7975, (
        "Cilandak Barat", "Lebak Bulus", "Pondok Labu", "Gandaria Selatan", "Cipete Selatan",
    )),
    (7, "Kebayoran Baru", -6.2425, 106.7990, (
        "Kramat Pela", "Gandaria Utara", "Cipete Utara", "Pulo", "Melawai", "Petogogan",
        "Rawa Barat", "Senayan", "Selong", "Gunung",
    )),
    (8, "Pancoran", -6.2505, 106.8445, (
        "Kalibata", "Rawajati", "Duren Tiga", "Pancoran", "Pengadegan", "Cikoko",
    )),
    (9, "Jagakarsa", -6.3340, 106.8225, (
        "Jagakarsa", "Srengseng Sawah", "Ciganjur", "Lenteng Agung", "Tanjung Barat",
        "Cipedak",
    )),
    (10, "Pesanggrahan", -6.2540, 106.7600, (
        "Petukangan Utara", "Petukangan Selatan", "Ulujami", "Pesanggrahan", "Bintaro",
    )),
)


def _build() -> tuple[Kecamatan, ...]:
    result = []
    for number, name, lat, lon, kelurahan_names in _RAW:
        code = f"{CITY_CODE}.{number:02d}"
        kelurahan = tuple(
            Kelurahan(code=f"{code}.{1001 + i}", name=kel_name)
            for i, kel_name in enumerate(kelurahan_names)
        )
        result.append(Kecamatan(code, name, lat, lon, kelurahan))
    return tuple(result)


KECAMATAN: tuple[Kecamatan, ...] = _build()

KECAMATAN_BY_CODE: dict[str, Kecamatan] = {k.code: k for k in KECAMATAN}
KECAMATAN_BY_NAME: dict[str, Kecamatan] = {k.name: k for k in KECAMATAN}

KELURAHAN: tuple[Kelurahan, ...] = tuple(kel for kec in KECAMATAN for kel in kec.kelurahan)
KELURAHAN_BY_CODE: dict[str, Kelurahan] = {k.code: k for k in KELURAHAN}


def kecamatan_of(code: str) -> Kecamatan:
    """The kecamatan containing `code` (a kecamatan code or any code below it)."""
    return KECAMATAN_BY_CODE[".".join(code.split(".")[:3])]
