/** A set of TLS files the node serves or connects with: `read` reads them again and returns how to put them in use. */
interface Renewable {
  name: string;
  read: () => () => void;
}

/**
 * The node's certificates, read again on request (SIGHUP) so that a renewed certificate is used
 * without a restart: by connections made from then on, while open ones keep theirs.
 */
export class CertificateRenewal {
  private readonly parts: Renewable[] = [];

  add(name: string, read: () => () => void): void {
    this.parts.push({ name, read });
  }

  /**
   * Reads every set again, then puts them all in use, and returns their names. If any cannot be
   * read (a StartupError naming the file), none is changed.
   */
  renew(): string[] {
    const apply = this.parts.map((part) => part.read());
    for (const use of apply) use();
    return this.parts.map((part) => part.name);
  }
}
