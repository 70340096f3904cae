"""Short booking codes a caller can say aloud and type back."""
import re
import secrets

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V or G/Q: nothing that sounds or looks like another symbol.
ALPHABET = "ACDEFHJKMNPRTWXY34679"
LENGTH = 6


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_code(raw: str) -> str:
    """Accept 'k7m-4px', 'K7M 4PX' or 'K 7 M 4 P X' for the stored 'K7M4PX'."""
    return re.sub(r"[^0-9A-Za-z]", "", raw).upper()


def spoken_code(code: str) -> str:
    """'K7M4PX' -> 'K 7 M, 4 P X': two groups, each symbol separate, for voice."""
    half = len(code) // 2
    return f"{' '.join(code[:half])}, {' '.join(code[half:])}"
