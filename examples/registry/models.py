"""The registry's own tables: identity only, keyed by the ids the office database uses."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class RegistryBase(DeclarativeBase):
    """Not the office's base: the registry is another system with another database."""


class Person(RegistryBase):
    __tablename__ = "person"

    # The same id the office database gives the foreigner: the registry assigns it.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Searched by case-insensitive substring; lower(full_name) LIKE '%…%' cannot use an
    # index, so there is none (a scan of a city's foreigners is milliseconds).
    full_name: Mapped[str] = mapped_column(String(200))
    # Unique, hence indexed: the field check looks people up by document number.
    passport_number: Mapped[str] = mapped_column(String(32), unique=True)
    birth_date: Mapped[date] = mapped_column(Date)
    photo_url: Mapped[str | None] = mapped_column(String(500), nullable=True)


class PermitDocument(RegistryBase):
    __tablename__ = "permit_document"

    # The same id as the office's stay_permit row.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    sponsor_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
