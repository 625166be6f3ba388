-- The stand-in registry's database beside the office's (the real registry is another
-- system with its own; here one PostgreSQL server holds both).
CREATE DATABASE registry;
