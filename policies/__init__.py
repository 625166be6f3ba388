"""The policy: `.polar` files and the thin Python that loads them and answers
"may this principal see this row / this field". Imports oso and the standard library only."""

from policies.loader import CompiledPolicy, Policy, PolicyError, RoleAccess
from policies.principal import Principal

__all__ = ["CompiledPolicy", "Policy", "PolicyError", "Principal", "RoleAccess"]
