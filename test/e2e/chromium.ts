import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * The system's Chromium (playwright-core downloads no browser): `CHROMIUM_PATH`, else Debian's
 * or Ubuntu's package. Undefined when none is installed, so the browser test can skip and say why.
 */
export const chromiumPath = (): string | undefined =>
  [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
    (p): p is string => !!p && existsSync(p),
  );

/** Headless, and fit for containers: no sandbox (often root), no GPU, no small /dev/shm. */
export const launchChromium = (executablePath: string): Promise<Browser> =>
  chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
