/**
 * Files in the browser: an image uploaded from one page shows as a thumbnail on the other and
 * downloads byte-exact through the page's link; a file named like a script shows as text.
 */
import { readFile } from "node:fs/promises"
import sharp from "sharp"
import t from "tap"
import { directChatPages, screenshot } from "../support/browser"
import { eventually } from "../support/servers"
import { withStack } from "../support/stack"

t.test("a file round trip through two browsers", async (t) => {
  const stack = await withStack(t)
  const { a, b } = await directChatPages(t, stack)

  const download = async (file: string): Promise<Buffer> => {
    const box = b.page.locator(".chat .file", { has: b.page.locator(".file-name", { hasText: file }) })
    const [saved] = await Promise.all([b.page.waitForEvent("download"), box.locator(".download").click()])
    const path = await saved.path()
    return readFile(path)
  }

  await t.test("an image: thumbnail on the other page, download byte-exact", async (t) => {
    const image = await sharp({
      create: { width: 640, height: 480, channels: 3, background: { r: 30, g: 120, b: 200 } },
    })
      .png()
      .toBuffer()
    // Record every progress text the composer shows (the row goes away when the upload is done).
    await a.page.evaluate(`
      window.coveProgress = []
      new MutationObserver(() => {
        for (const s of document.querySelectorAll(".upload-status")) window.coveProgress.push(s.textContent)
      }).observe(document.body, { subtree: true, childList: true, characterData: true })
    `)
    await a.page.locator(".composer .file-input").setInputFiles({
      name: "照片 photo.png",
      mimeType: "image/png",
      buffer: image,
    })
    const box = b.page.locator(".chat .file", {
      has: b.page.locator(".file-name", { hasText: "照片 photo.png" }),
    })
    await box.waitFor()
    await box.locator("img.thumbnail").waitFor()
    const width = await eventually(async () => {
      const w = await box
        .locator("img.thumbnail")
        .evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)
      return w > 0 ? w : undefined
    }, "the thumbnail to load")
    t.ok(width <= 320, "a thumbnail, not the original")
    t.same(await download("照片 photo.png"), image, "the download is the uploaded bytes")
    await a.page.locator(".chat .upload").waitFor({ state: "detached" })
    const progress = (await a.page.evaluate("window.coveProgress")) as string[]
    t.equal(progress.at(-1), "100%", `progress was shown up to 100% (${progress.join(" ")})`)
    await screenshot(b, "10-file-image")
  })

  await t.test("a file named like a script is shown as text, runs nothing, downloads intact", async (t) => {
    const name = "<script>alert(1)</script>.txt"
    const bytes = Buffer.from("just text 只是文字\n")
    await a.page
      .locator(".composer .file-input")
      .setInputFiles({ name, mimeType: "text/plain", buffer: bytes })
    const label = b.page.locator(".chat .file .file-name", { hasText: "alert(1)" })
    await label.waitFor()
    t.equal(await label.textContent(), name, "the name exactly, as text")
    t.equal(await b.page.locator(".chat script").count(), 0)
    t.same(await download(name), bytes)
    await screenshot(b, "11-file-xss-name")
    for (const u of [a, b]) t.same(u.dialogs, [], `no dialog opened for ${u.name}`)
  })
})
