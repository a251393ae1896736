// Mmove_TLS: TLS on the cluster link keyed by Cluster_Secret (TLS-PSK, no certificates). Both
// ends derive the same pre-shared key from the secret with HKDF-SHA256 and a fixed info string,
// so the secret itself never keys anything but the HKDF. The sender's PSK identity is its node
// name (the receiver logs it); every identity gets the same key: what authenticates a node is
// knowing the secret (and, inside TLS, its XMMOVE proof, which also names it). Pure functions
// and option objects; any thread.
import crypto from 'node:crypto';
import type tls from 'node:tls';

/** HKDF-SHA256 info string for the PSK; changing it is a wire-incompatible change. */
export const PSK_INFO = 'vipmta ECmmove2 TLS-PSK v1';
/** HKDF salt: fixed (RFC 5869 3.1 allows it), the secret is the only input that varies. */
export const PSK_SALT = 'vipmta-mmove';
/** TLS 1.2 only: the PSK cipher suites below are TLS 1.2 suites (tls.connect's pskCallback). */
export const TLS_VERSION = 'TLSv1.2' as const;
/**
 * AEAD PSK suites, best first; the receiver's order wins. ECDHE-PSK-CHACHA20-POLY1305 (RFC 7905)
 * adds an ephemeral key exchange: a secret learned later does not decrypt recorded sessions. The
 * plain-PSK AES-GCM suites (RFC 5487) are the fallback for an OpenSSL without ChaCha20.
 */
export const TLS_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256';
/** A TLS receiver drops a connection that has not finished its handshake within this long. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The 32-octet pre-shared key: HKDF-SHA256(salt PSK_SALT, ikm Cluster_Secret, info PSK_INFO). */
export function mmovePsk(secret: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), PSK_SALT, PSK_INFO, 32));
}

/** tls.connect options for the sending node (identity: its node name). */
export function clientTlsOptions(secret: string, nodeName: string): tls.ConnectionOptions {
  const psk = mmovePsk(secret);
  return {
    ciphers: TLS_CIPHERS,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    pskCallback: () => ({ psk, identity: nodeName }),
    // PSK suites carry no certificate: the key is the authentication.
    checkServerIdentity: () => undefined,
  };
}

/**
 * tls.createServer options for a receiver. `onIdentity` sees each connecting node's PSK identity
 * (for the logs). Without a secret every handshake fails (the pskCallback has no key to give).
 */
export function serverTlsOptions(
  secret: string | null,
  onIdentity: (sock: tls.TLSSocket, identity: string) => void,
  handshakeTimeoutMs = TLS_HANDSHAKE_TIMEOUT_MS,
): tls.TlsOptions {
  const psk = secret === null ? null : mmovePsk(secret);
  return {
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    handshakeTimeout: handshakeTimeoutMs,
    pskCallback: (sock: tls.TLSSocket, identity: string) => {
      onIdentity(sock, identity);
      return psk;
    },
  };
}

/** A TLS record header (handshake, SSL 3.0/TLS 1.x) as the first octets of a connection. */
export function looksLikeTlsHello(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x16 && b[1] === 0x03;
}
