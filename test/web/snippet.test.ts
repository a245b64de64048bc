/** Search snippets become text and marks; nothing else in them is markup. */
import t from "tap"
import { parseSnippet } from "../../web/src/snippet"

t.test("marks are the only markup; escapes are decoded into text", async (t) => {
  t.same(parseSnippet("我们<mark>你好</mark>世界"), [
    { text: "我们", marked: false },
    { text: "你好", marked: true },
    { text: "世界", marked: false },
  ])
  t.same(parseSnippet("&lt;img src=x onerror=alert(1)&gt; <mark>a&amp;b</mark> &quot;&#39;"), [
    { text: "<img src=x onerror=alert(1)> ", marked: false },
    { text: "a&b", marked: true },
    { text: " \"'", marked: false },
  ])
  t.same(
    parseSnippet("<b>raw</b> <mark>x</mark>"),
    [
      { text: "<b>raw</b> ", marked: false },
      { text: "x", marked: true },
    ],
    "a tag that is not a mark stays literal text",
  )
  t.same(parseSnippet("&amp;lt;"), [{ text: "&lt;", marked: false }], "decoded once")
  t.same(parseSnippet(""), [])
})
