"""Stand-ins for the systems the gateway talks to; none of them is part of the gateway."""
