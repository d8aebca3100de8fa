import { X509Certificate, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { createEnrolmentRequest, enrolmentFingerprint, enrolmentSigningBytes, issueFromRequest, verifyEnrolmentRequest } from './certificate-request.js';
import { generateIdentity } from './identity.js';
import { createCertificateAuthority } from './pki.js';

const random = seededRandomBytes('certificate-request-test');

describe('enrolment requests', () => {
  it('carry only public material, verify, and yield a client certificate for the institution\'s own TLS key', async () => {
    const identity = generateIdentity('hospital-a', random);
    const { request, tlsKeyPem } = await createEnrolmentRequest(identity, 'fed');
    expect(JSON.stringify(request)).not.toMatch(/PRIVATE KEY/);
    expect(tlsKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    await expect(verifyEnrolmentRequest(JSON.parse(JSON.stringify(request)), { name: 'hospital-a', federationId: 'fed' })).resolves.toMatchObject({ name: 'hospital-a' });
    const ca = await createCertificateAuthority('fed CA', { random });
    const certPem = await issueFromRequest(ca, request, { random });
    const cert = new X509Certificate(certPem);
    expect(cert.subject).toBe('CN=hospital-a');
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    // The certificate is for the key the institution kept: its public key matches the TLS private key.
    expect(createPublicKey(createPrivateKey(tlsKeyPem)).export({ type: 'spki', format: 'pem' })).toBe(cert.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(enrolmentFingerprint(request)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a request whose identity key, name or CSR was swapped in transit', async () => {
    const a = await createEnrolmentRequest(generateIdentity('hospital-a', random), 'fed');
    const b = await createEnrolmentRequest(generateIdentity('hospital-b', random), 'fed');
    await expect(verifyEnrolmentRequest({ ...a.request, publicKey: b.request.publicKey })).rejects.toThrow(/signature does not verify/);
    await expect(verifyEnrolmentRequest({ ...a.request, csr: b.request.csr })).rejects.toThrow(/signature does not verify/);
    await expect(verifyEnrolmentRequest(a.request, { name: 'hospital-b' })).rejects.toThrow(/name: expected "hospital-b"/);
    await expect(verifyEnrolmentRequest(a.request, { federationId: 'other' })).rejects.toThrow(/federationId: expected "other"/);
  });

  it('refuses a CSR whose subject is another institution, even when the identity key signed it', async () => {
    const b = await createEnrolmentRequest(generateIdentity('hospital-b', random), 'fed');
    // A request claiming the name hospital-a but carrying a CSR for CN=hospital-b, re-signed by its own identity key.
    const id = generateIdentity('hospital-a', random);
    const own = await createEnrolmentRequest(id, 'fed');
    const body = { ...own.request, csr: b.request.csr };
    const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), id.secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    const forged = { ...body, signature: sign(null, enrolmentSigningBytes(body), key).toString('base64') };
    await expect(verifyEnrolmentRequest(forged)).rejects.toThrow(/subject: expected "CN=hospital-a", received "CN=hospital-b"/);
  });
});
