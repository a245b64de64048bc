import t from "tap"
import { typeAllowed } from "../../functions/files/handler"
import { contentDisposition, safeFileName } from "../../lib/adapters/content-disposition"
import { fileKeys } from "../../lib/adapters/s3-objects"

t.test("download names: RFC 6266 with an ASCII fallback and the exact name in filename*", async (t) => {
  t.equal(contentDisposition("report.pdf"), `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`)
  t.equal(
    contentDisposition("季度报告.pdf"),
    `attachment; filename="____.pdf"; filename*=UTF-8''%E5%AD%A3%E5%BA%A6%E6%8A%A5%E5%91%8A.pdf`,
  )
  t.equal(
    contentDisposition('a "quoted"; name%.txt'),
    `attachment; filename="a _quoted__ name_.txt"; filename*=UTF-8''a%20%22quoted%22%3B%20name%25.txt`,
  )
  t.equal(contentDisposition("naïve 👋.txt").split("filename*=UTF-8''")[1], "na%C3%AFve%20%F0%9F%91%8B.txt")
})

t.test("a saved name never carries a path or control characters", async (t) => {
  t.equal(safeFileName("../../etc/passwd"), "passwd")
  t.equal(safeFileName("C:\\Users\\me\\evil.exe"), "evil.exe")
  t.equal(safeFileName("a\u202Etxt.exe"), "atxt.exe", "no bidi override that disguises the extension")
  t.equal(safeFileName(".."), "download")
  t.equal(safeFileName("dir/"), "download")
})

t.test("object keys come from safe ids only", async (t) => {
  t.same(fileKeys("abc_DEF-123"), {
    original: "files/abc_DEF-123/original",
    thumbnail: "files/abc_DEF-123/thumbnail.webp",
  })
  for (const bad of ["../x", "a/b", "a.b", "", "x".repeat(65)]) t.throws(() => fileKeys(bad), bad)
})

t.test("the type allow-list takes exact types and families", async (t) => {
  const allowed = ["image/*", "application/pdf"]
  t.ok(typeAllowed("image/png", allowed))
  t.ok(typeAllowed("application/pdf", allowed))
  t.notOk(typeAllowed("application/pdf+x", allowed))
  t.notOk(typeAllowed("text/html", allowed))
})
