/**
 * Username rules (docs/auth.md): NFKC-normalised; 3-32 characters; letters of any script, combining
 * marks, decimal digits and `_ . -`; starting and ending with a letter or digit (a mark may end it).
 * Uniqueness is on the case-folded form, so "Ana", "ANA" and "Ａｎａ" (fullwidth) are one name.
 */

export const USERNAME_MIN = 3
export const USERNAME_MAX = 32

const SHAPE = /^[\p{L}\p{Nd}](?:[\p{L}\p{M}\p{Nd}_.-]*[\p{L}\p{M}\p{Nd}])?$/u

export type Username = { readonly display: string; readonly key: string }

/**
 * Full case folding approximated by upper- then lower-casing (so "ß" folds with "SS", final "ς"
 * with "σ"), normalised again because case mapping can undo NFKC.
 */
export function usernameKey(name: string): string {
  return name.normalize("NFKC").toUpperCase().toLowerCase().normalize("NFKC")
}

/** A valid username's display and key forms, or the rule it breaks. */
export function parseUsername(raw: string): Username | { readonly problem: string } {
  const display = raw.normalize("NFKC")
  const length = [...display].length
  if (length < USERNAME_MIN || length > USERNAME_MAX) {
    return { problem: `must be ${USERNAME_MIN}-${USERNAME_MAX} characters` }
  }
  if (!SHAPE.test(display)) {
    return {
      problem: "may hold letters, digits, _ . and -, and must start and end with a letter or digit",
    }
  }
  return { display, key: usernameKey(display) }
}
