/**
 * Thumbnails with sharp (libvips): prebuilt binaries inside its npm packages (no compiler, no
 * download at install), streaming and fast, maintained since 2013, and it refuses decompression
 * bombs (limitInputPixels). It is loaded at run time from node_modules rather than bundled:
 * its loader finds the platform binary through `createRequire(import.meta.url)`, which an
 * esbuild CommonJS bundle does not have (docs/files.md, "Deploying thumbnails").
 */
import type { ThumbnailMaker } from "../ports"

type Sharp = typeof import("sharp").default

/** A name, not a literal, so that esbuild leaves the import to Node at run time. */
const SHARP_MODULE = "sharp"

/** What sharp decodes from the prebuilt libvips; anything else gets no thumbnail. */
const DECODABLE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/tiff"])

export function thumbnailable(contentType: string): boolean {
  return DECODABLE.has(contentType)
}

export function sharpThumbnails(): ThumbnailMaker {
  let loaded: Promise<Sharp> | undefined
  const load = () => {
    loaded ??= (import(SHARP_MODULE) as Promise<{ default: Sharp }>).then((m) => m.default)
    return loaded
  }
  return {
    async make(image, maxPx) {
      const sharp = await load()
      try {
        const { data, info } = await sharp(image, { failOn: "error", limitInputPixels: 100_000_000 })
          .rotate()
          .resize(maxPx, maxPx, { fit: "inside", withoutEnlargement: true })
          .webp({ quality: 75 })
          .toBuffer({ resolveWithObject: true })
        return { data, width: info.width, height: info.height }
      } catch (err) {
        // libvips refuses what it cannot decode (corrupt, truncated, too many pixels): no thumbnail.
        if (
          err instanceof Error &&
          /Input|unsupported|corrupt|pixel limit|VipsJpeg|VipsForeign/i.test(err.message)
        )
          return undefined
        throw err
      }
    },
  }
}
