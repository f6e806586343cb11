/**
 * Disposable email domains, from the npm package `disposable-email-domains` (a JSON array of
 * ~120,000 domains, 2.4 MB). It is NOT bundled into the worker: esbuild would add the whole
 * list to every cold start and blow the bundle target (docs/PERFORMANCE.md). The module name is
 * not a literal, so esbuild leaves a runtime require(); serverless.yml packages the JSON file
 * beside the bundle (`package.patterns`), and it is read only when REVIEW_DISPOSABLE_EMAIL is on,
 * once per container.
 */
import { emailDomain } from '../identity';

const PACKAGE: string = ['disposable-email-domains'].join('');

let domains: ReadonlySet<string> | undefined;

/** True when the email's domain, or a parent domain of it, is a known disposable one. */
export function isDisposableEmail(email: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const list = (domains ??= new Set((require(PACKAGE) as string[]).map((domain) => domain.toLowerCase())));
  const labels = emailDomain(email).split('.');
  return labels.slice(1).some((_, i) => list.has(labels.slice(i).join('.')));
}
