// The bridge's web app in a real headless browser, as a person sees it.
// Started by the Go test server/webe2e, which serves the page (the plugin's
// bundled main.js loaded as the Mattermost web app loads it) and the
// plugin's real REST API from the test host with a real XMPP bridge; this
// script drives Debian's chromium with playwright-core, checks what shows,
// saves screenshots and fails on any console error.
//
// Environment (set by the Go test):
//   E2E_URL       the page
//   E2E_CHROMIUM  the browser executable
//   E2E_OUT       the folder for screenshots
//   E2E_EXPECT    JSON: {linkedChannel, unlinkedChannelID, room, team,
//                 post: {author, message}, doctor: {checks: [names]} or
//                 {error: message}, mayFail: [URL paths answered non-2xx on purpose]}
import fs from 'node:fs';
import path from 'node:path';

import {chromium} from 'playwright-core';

const url = process.env.E2E_URL;
const out = process.env.E2E_OUT;
const want = JSON.parse(process.env.E2E_EXPECT || '{}');
const timeout = 20_000;

// Only this run's screenshots: a failure.png left by an earlier run would mislead.
fs.rmSync(out, {recursive: true, force: true});
fs.mkdirSync(out, {recursive: true});

function fail(msg) {
    throw new Error(msg);
}

// text waits until locator's text satisfies ok, and returns it.
async function text(locator, ok, what) {
    const deadline = Date.now() + timeout;
    let last = '';
    for (;;) {
        if (await locator.count() > 0) {
            last = (await locator.first().textContent()) ?? '';
            if (ok(last)) {
                return last;
            }
        }
        if (Date.now() > deadline) {
            fail(`${what}: got ${JSON.stringify(last)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
    }
}

async function visible(locator, what) {
    try {
        await locator.first().waitFor({state: 'visible', timeout});
    } catch {
        fail(`${what} did not show`);
    }
}

const browser = await chromium.launch({
    executablePath: process.env.E2E_CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({viewport: {width: 1280, height: 900}});
const problems = [];
const failedOnPurpose = new Set(want.mayFail ?? []);
page.on('console', (m) => {
    if (m.type() !== 'error') {
        return;
    }
    // Chromium reports every non-2xx answer as a console error; those the
    // test asks for (a channel that is not linked...) are expected.
    const at = m.location()?.url ?? '';
    if (m.text().startsWith('Failed to load resource') && failedOnPurpose.has(new URL(at, url).pathname)) {
        return;
    }
    problems.push(`console error: ${m.text()} (${at})`);
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

const shot = (name) => page.screenshot({path: path.join(out, name), fullPage: true});

try {
    await page.goto(url);
    // Runs in the page, where window is the browser's.
    await page.waitForFunction(() => globalThis.harnessReady === true, null, {timeout});

    // System Console: a panel per network with its state badge.
    const xmpp = page.getByRole('region', {name: 'XMPP bridge'});
    await visible(xmpp, 'the XMPP panel');
    await text(xmpp.locator('.bridge-badge').first(), (t) => t === 'connected', 'the XMPP state badge');
    await text(page.getByRole('region', {name: 'Mattermost bridge'}).locator('.bridge-badge').first(), (t) => t === 'connected', 'the Mattermost state badge');
    await text(xmpp.getByLabel('Relayed to Mattermost'), (t) => Number(t) >= 1, 'messages relayed from XMPP');

    // The link table: the linked channel's row.
    const row = page.getByRole('table', {name: 'Linked channels'}).getByRole('row').filter({hasText: want.linkedChannel});
    await visible(row, `the row of ~${want.linkedChannel}`);
    const cells = row.getByRole('cell');
    await text(cells.nth(1), (t) => t === want.team, 'the team cell');
    await text(cells.nth(2), (t) => t.includes(want.room) && t.includes('XMPP'), 'the remote rooms cell');
    await text(cells.nth(3), (t) => t === 'ok', 'the health cell');
    await shot('admin-console.png');

    // A relayed post: the network badge beside its author's name.
    const post = page.locator('.post').filter({hasText: want.post.message});
    await text(post.locator('.col__name'), (t) => t === `${want.post.author}XMPP`, 'the author of the relayed post with its network badge');

    // The channel header: the indicator on the linked channel, none on the other.
    const header = page.locator('#header-linked');
    const indicator = header.getByRole('button', {name: /^Bridged to XMPP: connected$/});
    await visible(indicator, 'the linked channel\'s bridge indicator');
    await indicator.click();
    const popover = header.getByRole('dialog', {name: 'Bridged rooms'});
    await text(popover, (t) => t.includes(want.room), 'the rooms popover');
    await page.waitForResponse((r) => r.url().includes(`/channels/${want.unlinkedChannelID}/links`), {timeout}).catch(() => undefined);
    await page.waitForTimeout(300);
    if ((await page.locator('#header-unlinked .bridge-channel-indicator').count()) !== 0) {
        fail('the channel that is not linked shows a bridge indicator');
    }
    await shot('channel-header.png');

    // Test connection: the doctor's report, or the API's clear error.
    await xmpp.getByRole('button', {name: 'Test connection'}).click();
    if (want.doctor.checks) {
        const report = xmpp.getByLabel('Connection test report');
        await visible(report, 'the doctor\'s report');
        for (const name of want.doctor.checks) {
            await visible(report.getByRole('listitem').filter({hasText: name}), `the check ${name}`);
        }
    } else {
        await text(xmpp.getByRole('alert'), (t) => t === want.doctor.error, 'the error shown for Test connection');
    }
    await shot('test-connection.png');

    // Unlink, after confirming.
    await row.getByRole('button', {name: `Unlink ${want.linkedChannel}`}).click();
    const dialog = page.getByRole('dialog', {name: `Unlink ~${want.linkedChannel}?`});
    await visible(dialog, 'the unlink confirmation');
    await shot('unlink-confirmation.png');
    await dialog.getByRole('button', {name: 'Unlink'}).click();
    await visible(page.getByText(/No channel is linked yet/), 'the empty link table after unlinking');
    await shot('unlinked.png');

    if (problems.length > 0) {
        fail(problems.join('\n'));
    }
    console.log('browser test passed; screenshots in', out);
} catch (err) {
    await shot('failure.png').catch(() => undefined);
    console.error(err instanceof Error ? err.message : String(err));
    if (problems.length > 0) {
        console.error(problems.join('\n'));
    }
    process.exitCode = 1;
} finally {
    await browser.close();
}
