// Debian's Chromium for the browser tests, driven by playwright-core.
import { chromium } from 'playwright-core';

// Headless, quiet, and with LocalNetworkAccessChecks off: Chromium refuses
// the connections playwright's routeWebSocket relays to 127.0.0.1 otherwise.
export const launchChromium = () => chromium.launch({
  executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-features=LocalNetworkAccessChecks'],
});
