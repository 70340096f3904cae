"""Customer-facing words in the customer's language: which language (negotiation), the translated
sentences (gettext catalogs read with Babel), and dates and times said the local way (CLDR, through Babel)."""
from nextslot.languages.catalogs import LANGUAGES, gettext, ngettext, translator
from nextslot.languages.choose import choose, from_accept_language, known
from nextslot.languages.local_times import local_clock, local_day, local_when

__all__ = ["LANGUAGES", "choose", "from_accept_language", "gettext", "known", "local_clock", "local_day",
           "local_when", "ngettext", "translator"]
