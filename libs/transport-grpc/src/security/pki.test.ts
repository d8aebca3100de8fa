import { seededRandomBytes } from '@fedlora/tensor';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, describeCertificate, issueCertificate } from './pki.js';

const random = seededRandomBytes('pki');

describe('federation PKI', () => {
  it('creates a CA that signs a server certificate valid for loopback and the given hosts', async () => {
    const ca = await createCertificateAuthority('fed-1 CA', { random });
    const server = await issueCertificate(ca, { commonName: 'coordinator', kind: 'server', hosts: ['127.0.0.1', 'localhost', 'coord.example.org'], random });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(server.certPem);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('coord.example.org')).toBe('coord.example.org');
    expect(cert.checkHost('evil.example.org')).toBeUndefined();
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('issues client certificates for clientAuth whose key matches the certificate', async () => {
    const ca = await createCertificateAuthority('fed-1 CA', { random });
    const client = await issueCertificate(ca, { commonName: 'hospital-a', kind: 'client', random });
    const cert = new X509Certificate(client.certPem);
    expect(cert.subject).toBe('CN=hospital-a');
    expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
    const derived = createPublicKey(createPrivateKey(client.keyPem)).export({ format: 'der', type: 'spki' });
    expect(Buffer.compare(derived, cert.publicKey.export({ format: 'der', type: 'spki' }))).toBe(0);
  });

  it('describes a certificate for reports', async () => {
    const ca = await createCertificateAuthority('fed-1 CA', { random, notBefore: Date.UTC(2026, 0, 1), validityDays: 10 });
    const d = describeCertificate(ca.certPem);
    expect(d).toMatchObject({ subject: 'CN=fed-1 CA', issuer: 'CN=fed-1 CA', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-11T00:00:00.000Z', sans: [] });
    expect(d.fingerprintSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects invalid names and validity', async () => {
    await expect(createCertificateAuthority('', { random })).rejects.toThrow(/commonName: expected a string of 1..64 characters, received ""/);
    await expect(createCertificateAuthority('x', { random, validityDays: 0 })).rejects.toThrow(/validityDays: expected a positive number, received 0/);
  });
});
