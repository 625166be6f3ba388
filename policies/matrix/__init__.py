"""The access matrix: who can see what, generated from the loaded policy (never by hand).

`access_matrix` reads it out of the compiled policy as JSON data; `to_markdown` and
`to_html` render it. Pure Python over Oso and the standard library, like all of policies/.
"""

from policies.matrix.build import MATRIX_VERSION, ROOT_TYPES, access_matrix, schema_fields_of
from policies.matrix.declared import policy_page_allowed
from policies.matrix.markdown import to_markdown
from policies.matrix.page import to_html
from policies.matrix.scope_words import scope_in_words

__all__ = ["MATRIX_VERSION", "ROOT_TYPES", "access_matrix", "policy_page_allowed",
           "schema_fields_of", "scope_in_words", "to_html", "to_markdown"]
