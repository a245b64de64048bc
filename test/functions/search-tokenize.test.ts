/** The search tokenizer and the tsvector/tsquery texts it feeds: unit cases and properties. */
import fc from "fast-check"
import t from "tap"
import { snippet } from "../../lib/search/snippet"
import { queryTerms, tokenize } from "../../lib/search/tokenize"
import { documentVector, matchSpans, termsQuery } from "../../lib/search/tsearch"

const lexemes = (text: string) => tokenize(text).map((x) => `${x.lexeme}@${x.pos}`)

/** Han, kana and hangul characters, as generated text. */
const cjkChar = fc.oneof(
  fc.integer({ min: 0x4e00, max: 0x9fff }),
  fc.integer({ min: 0x3041, max: 0x3096 }),
  fc.integer({ min: 0x30a1, max: 0x30fa }),
  fc.integer({ min: 0xac00, max: 0xd7a3 }),
  fc.constantFrom(0x30fc),
)
const cjkText = fc.array(cjkChar, { minLength: 1, maxLength: 40 }).map((cs) => String.fromCodePoint(...cs))
/** Mixed text: CJK, Latin, Cyrillic, digits, full-width, spaces, punctuation and emoji. */
const mixedText = fc
  .array(
    fc.oneof(
      cjkText,
      fc.constantFrom(
        "Python",
        "ＡＢＣ",
        "Straße",
        "Привет",
        "3.12",
        " ",
        "，",
        "👍🏽",
        "1️⃣",
        "e\u0301",
        "-",
        "'",
      ),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join(""))

t.test("words, CJK unigrams and bigrams, with continuous positions", async (t) => {
  t.same(lexemes("我用Python写"), ["我@1", "我用@1", "用@2", "python@3", "写@4"])
  t.same(lexemes("ＡＢＣ abc Abc"), ["abc@1", "abc@2", "abc@3"], "full-width and case fold together")
  t.same(lexemes("Straße ΣΟΦΟΣ"), ["strasse@1", "σοφοσ@2"], "ß and final sigma fold")
  t.same(lexemes("👍🏽 1️⃣ ❤️ 🇨🇳 ok"), ["ok@1"], "emoji, keycaps and flags are ignored")
  t.same(
    lexemes("北京。大学"),
    ["北@1", "北京@1", "京@2", "大@3", "大学@3", "学@4"],
    "no bigram across punctuation",
  )
  t.same(lexemes("㍿"), ["株@1", "株式@1", "式@2", "式会@2", "会@3", "会社@3", "社@4"], "NFKC expands")
  t.same(lexemes("cafe\u0301"), ["café@1"], "combining marks compose")
  t.same(lexemes(""), [])
  t.same(lexemes("a".repeat(100)), [`${"a".repeat(64)}@1`], "very long words are cut")
  const spans = tokenize("ｘ北")
  t.same(
    spans.map((s) => [s.start, s.end]),
    [
      [0, 1],
      [1, 2],
    ],
    "spans point into the original text",
  )
})

t.test("queries: AND of terms, phrases within a term, prefixes for a last word", async (t) => {
  t.equal(termsQuery(queryTerms("北京大学")), "('北京' <1> '京大' <1> '大学')")
  t.equal(termsQuery(queryTerms("北")), "'北'")
  t.equal(termsQuery(queryTerms("我用Python写")), "('我用' <2> 'python' <1> '写')")
  t.equal(termsQuery(queryTerms("deploy fix")), "'deploy':* & 'fix'")
  t.equal(termsQuery(queryTerms("go 2026")), "'go' & '2026'", "short words and numbers match exactly")
  t.equal(termsQuery(queryTerms("a a A")), "'a'", "repeated terms count once")
  t.equal(termsQuery(queryTerms("it's")), "('it' <1> 's')")
  t.same(queryTerms("  👍 。。 "), [], "nothing to look for")
})

t.test("lexemes are quoted: quotes, backslashes and operators stay inside them", async (t) => {
  t.equal(documentVector("c", [{ text: "x", weight: "D" }]), "'~c:c' 'x':1")
  t.equal(documentVector("c", [{ text: "a b", weight: "A" }]), "'~c:c' 'a':1A 'b':2A")
  for (const q of ["'; DROP TABLE x; --", "a & b | !c <-> d", "\\' :* ()"]) {
    const text = termsQuery(queryTerms(q))
    t.notMatch(text.replace(/'[^']*'/g, ""), /[|!]/, `${q}: no operator outside quotes but & and phrases`)
  }
})

t.test("the tokenizer never throws, and its output is well formed", async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), mixedText), (text) => {
      const tokens = tokenize(text)
      const vector = documentVector("conv", [{ text, weight: "A" }])
      termsQuery(queryTerms(text))
      snippet(text, queryTerms(text))
      return (
        vector.startsWith("'~c:conv'") &&
        tokens.every(
          (x) =>
            x.lexeme.length > 0 &&
            !/[\s~'\\]/u.test(x.lexeme) &&
            x.pos >= 1 &&
            x.start >= 0 &&
            x.end <= text.length &&
            x.start < x.end,
        )
      )
    }),
    { numRuns: 2000 },
  )
  t.pass("held for 2,000 random inputs")
})

t.test("any substring of a CJK text is found in it: its query tokens are the text's tokens", async (t) => {
  fc.assert(
    fc.property(
      cjkText,
      fc.nat(),
      fc.nat(),
      fc.oneof(fc.constant(""), fc.constantFrom("Python", "，", " ", "👍")),
      (text, a, b, around) => {
        const doc = `${around}${text}${around}`
        const start = a % text.length
        const end = start + 1 + (b % (text.length - start))
        const terms = queryTerms(text.slice(start, end))
        const have = new Set(tokenize(doc).map((x) => x.lexeme))
        const contained = terms.every((term) => term.every((x) => have.has(x.lexeme)))
        // And as a phrase at the right positions (what the tsquery checks in PostgreSQL).
        return contained && terms.length === 1 && matchSpans(tokenize(doc), terms).length > 0
      },
    ),
    { numRuns: 2000 },
  )
  t.pass("held for 2,000 random inputs")
})

t.test("mixed text: a query of any run of its characters with no space matches it", async (t) => {
  fc.assert(
    fc.property(mixedText, fc.nat(), fc.nat(), (text, a, b) => {
      const chars = [...text]
      if (chars.length === 0) return true
      const start = a % chars.length
      const piece = chars.slice(start, start + 1 + (b % (chars.length - start))).join("")
      // Cutting inside a word makes a prefix of it (allowed only at the end) or a suffix (not
      // a word of the text): only whole-word cuts are promised to match.
      const words = /[\p{L}\p{N}\p{M}]/u
      const before = chars[start - 1]
      const after = chars[start + [...piece].length]
      if ((before !== undefined && words.test(before)) || (after !== undefined && words.test(after)))
        return true
      if (/\s/u.test(piece)) return true
      const terms = queryTerms(piece)
      return terms.length === 0 || matchSpans(tokenize(text), terms).length > 0
    }),
    { numRuns: 2000 },
  )
  t.pass("held for 2,000 random inputs")
})

t.test("snippets mark the original text and escape HTML", async (t) => {
  t.equal(snippet("a <b> & 北京大学", queryTerms("北京")), "a &lt;b&gt; &amp; <mark>北京</mark>大学")
  t.equal(snippet("ＡＢＣ", queryTerms("abc")), "<mark>ＡＢＣ</mark>")
  const long = `${"前".repeat(100)}目标${"后".repeat(300)}`
  const cut = snippet(long, queryTerms("目标"))
  t.match(cut, /^….*<mark>目标<\/mark>.*…$/)
  t.ok([...cut.replace(/<\/?mark>/g, "")].length <= 162)
  const emoji = snippet(`${"😀".repeat(100)} hello`, queryTerms("hello"))
  t.ok(emoji.isWellFormed(), "never cuts a surrogate pair")
  t.match(emoji, /^…(😀)+ <mark>hello<\/mark>$/u)
})
