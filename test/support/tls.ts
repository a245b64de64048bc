/** Throwaway PEM certificates for tests of TLS to NATS: an authority, a server and a client. */
import { execFileSync } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"

export type TestCertificates = {
  /** File paths. */
  readonly ca: string
  readonly server: { readonly cert: string; readonly key: string }
  readonly client: { readonly cert: string; readonly key: string }
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** Made with the openssl command line in `dir`; valid for a day, for 127.0.0.1 (which nats.js names localhost). */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  openssl(
    dir,
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=cove test authority",
  )
  const signed = async (name: string, extensions: string) => {
    await writeFile(join(dir, `${name}.ext`), extensions)
    openssl(
      dir,
      "req",
      ...EC_KEY,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=cove test ${name}`,
    )
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    )
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
  }
  return {
    ca: join(dir, "ca.pem"),
    server: await signed(
      "server",
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    ),
    client: await signed("client", "extendedKeyUsage=clientAuth\n"),
  }
}
