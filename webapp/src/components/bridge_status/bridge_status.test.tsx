import {act, fireEvent, render, screen, waitFor, within} from '@testing-library/react';
import React from 'react';

import type {FakeAPI} from '../../test_utils/fake_api';
import {installFakeAPI} from '../../test_utils/fake_api';
import {doctorReport, linksReport, networkStatus, statusReport} from '../../test_utils/fixtures';

import BridgeStatusSetting from './bridge_status';

let api: FakeAPI;

beforeEach(() => {
    window.basename = '';
    api = installFakeAPI({
        'GET /api/v1/status': {body: statusReport()},
        'GET /api/v1/links': {body: linksReport()},
    });
});

function panel(title: string) {
    return screen.getByRole('region', {name: `${title} bridge`});
}

async function renderLoaded(pollMs = 60_000) {
    render(
        <BridgeStatusSetting
            id='BridgeStatus'
            pollMs={pollMs}
        />,
    );
    await screen.findByRole('region', {name: 'XMPP bridge'});
    await screen.findByRole('table', {name: 'Linked channels'});
}

test('a panel per network shows its state, last error and counters', async () => {
    await renderLoaded();

    const xmpp = panel('XMPP');
    expect(within(xmpp).getByText('connected').getAttribute('data-tone')).toBe('good');
    expect(within(xmpp).getByText(/^since /)).toBeTruthy();
    expect(within(xmpp).getByLabelText('Relayed to Mattermost').textContent).toBe('12');
    expect(within(xmpp).getByLabelText('Relayed to XMPP').textContent).toBe('30');
    expect(within(xmpp).getByLabelText('Dropped').textContent).toBe('1');
    expect(within(xmpp).getByText('too large 1')).toBeTruthy();
    expect(within(xmpp).getByLabelText('Queued').textContent).toBe('0');
    expect(within(xmpp).getByLabelText('Remote users').textContent).toBe('5');

    const matrix = panel('Matrix');
    expect(within(matrix).getByText('failed').getAttribute('data-tone')).toBe('bad');
    expect(within(matrix).getByText('Last error: homeserver unreachable: connection refused')).toBeTruthy();
    expect(within(matrix).getByLabelText('Queued').textContent).toBe('7');

    const slack = panel('Slack');
    expect(within(slack).getByText('disabled').getAttribute('data-tone')).toBe('off');
    expect(within(slack).getByRole<HTMLButtonElement>('button', {name: 'Test connection'}).disabled).toBe(true);

    // Mattermost itself has no doctor, and its counters say what it posted and sent out.
    const mattermost = panel('Mattermost');
    expect(within(mattermost).queryByRole('button', {name: 'Test connection'})).toBeNull();
    expect(within(mattermost).getByLabelText('Posted in Mattermost').textContent).toBe('12');
    expect(within(mattermost).getByLabelText('Sent out of Mattermost').textContent).toBe('30');
});

test('the link table shows the channel, team, rooms, health and last messages', async () => {
    await renderLoaded();
    const row = screen.getByRole('row', {name: /Town Square/});
    const cells = within(row).getAllByRole('cell');
    expect(cells[0].textContent).toBe('Town Square');
    expect(cells[1].textContent).toBe('eng');
    expect(cells[2].textContent).toContain('dev@conference.example.org');
    expect(cells[2].textContent).toContain('#dev:example.org');
    expect(within(cells[3]).getByText('degraded').getAttribute('data-tone')).toBe('warn');
    expect(cells[4].textContent).toBe(new Date('2026-12-07T10:04:00Z').toLocaleString());
    expect(cells[5].textContent).toBe(new Date('2026-12-07T10:05:00Z').toLocaleString());
});

test('requests go to the plugin under the page\'s base path with the session cookie, as Client4 sends them', async () => {
    window.basename = '/chat';
    await renderLoaded();
    const [req] = api.calls('GET', '/api/v1/status');
    expect(req.url).toBe('/chat/plugins/com.mattermost.bridge/api/v1/status');
    expect(req.headers['X-Requested-With']).toBe('XMLHttpRequest');
    expect(req.credentials).toBe('same-origin');
});

test('it follows the bridge by polling, without a reload', async () => {
    await renderLoaded(50);
    api.routes['GET /api/v1/status'] = {body: statusReport([networkStatus({state: 'disconnected', last_error: 'connection reset by peer'})])};
    await waitFor(() => expect(within(panel('XMPP')).getByText('disconnected')).toBeTruthy());
    expect(within(panel('XMPP')).getByText('Last error: connection reset by peer')).toBeTruthy();
    expect(api.calls('GET', '/api/v1/links').length).toBeGreaterThan(1);
});

test('polling stops when the page is left', async () => {
    const {unmount} = render(
        <BridgeStatusSetting
            id='BridgeStatus'
            pollMs={20}
        />,
    );
    await screen.findByRole('region', {name: 'XMPP bridge'});
    unmount();
    const seen = api.requests.length;
    await act(() => new Promise((r) => setTimeout(r, 100)));
    expect(api.requests.length).toBe(seen);
});

test('an error from the API is shown with its message, and the last answer stays', async () => {
    await renderLoaded(50);
    api.routes['GET /api/v1/status'] = {status: 503, body: {error: 'the bridge is not running'}};
    await screen.findByText('Could not read the bridge status: the bridge is not running');
    expect(panel('XMPP')).toBeTruthy();
});

test('a refusal before anything loaded says why', async () => {
    api.routes['GET /api/v1/status'] = {status: 403, body: {error: 'only system admins can read the bridge status'}};
    api.routes['GET /api/v1/links'] = {status: 403, body: {error: 'only system admins can list links'}};
    render(<BridgeStatusSetting id='BridgeStatus'/>);
    expect((await screen.findByText(/^Could not read the bridge status/)).textContent).toBe('Could not read the bridge status: only system admins can read the bridge status');
    expect((await screen.findByText(/^Could not read the links/)).textContent).toBe('Could not read the links: only system admins can list links');
});

test('an answer in another shape says so instead of breaking the page', async () => {
    // The status of an older server part: networks keyed by name.
    api.routes['GET /api/v1/status'] = {body: {networks: {xmpp: {state: 'connected'}}, links: 1}};
    render(<BridgeStatusSetting id='BridgeStatus'/>);
    expect((await screen.findByText(/^Could not read the bridge status/)).textContent).toContain('is the plugin\'s server part the same version as its web app?');
    await screen.findByRole('table', {name: 'Linked channels'});
});

test('Test connection runs the network\'s doctor and shows each check with its detail and fix', async () => {
    let finish: (a: {body: unknown}) => void = () => undefined;
    api.routes['POST /api/v1/networks/xmpp/test'] = () => new Promise((resolve) => {
        finish = resolve;
    });
    await renderLoaded();
    const xmpp = panel('XMPP');
    fireEvent.click(within(xmpp).getByRole('button', {name: 'Test connection'}));
    expect(within(xmpp).getByRole<HTMLButtonElement>('button', {name: 'Testing…'}).disabled).toBe(true);
    finish({body: doctorReport()});

    const report = await within(xmpp).findByLabelText('Connection test report');
    expect(within(report).getByText('1 of 2 checks failed')).toBeTruthy();
    const [dns, auth] = within(report).getAllByRole('listitem');
    expect(within(dns).getByText('pass')).toBeTruthy();
    expect(dns.textContent).toContain('DNS: example.org resolves to 127.0.0.1');
    expect(within(dns).queryByText(/^Fix:/)).toBeNull();
    expect(within(auth).getByText('fail')).toBeTruthy();
    expect(auth.textContent).toContain('Authentication: SASL SCRAM-SHA-1-PLUS refused: not-authorized');
    expect(within(auth).getByText('Fix: Set the bot password in the System Console to the account\'s password.')).toBeTruthy();
    expect(api.calls('POST', '/api/v1/networks/xmpp/test')).toHaveLength(1);
});

test('Test connection shows the API\'s error when the doctor cannot run', async () => {
    api.routes['POST /api/v1/networks/xmpp/test'] = {status: 409, body: {error: 'XMPP is disabled: enable it in the settings first'}};
    await renderLoaded();
    const xmpp = panel('XMPP');
    fireEvent.click(within(xmpp).getByRole('button', {name: 'Test connection'}));
    expect((await within(xmpp).findByRole('alert')).textContent).toBe('XMPP is disabled: enable it in the settings first');
    expect(within(xmpp).queryByLabelText('Connection test report')).toBeNull();
});

test('Unlink asks first; Cancel changes nothing', async () => {
    await renderLoaded();
    fireEvent.click(screen.getByRole('button', {name: 'Unlink Town Square'}));
    const dialog = screen.getByRole('dialog');
    expect(within(dialog).getByText('Unlink ~Town Square?')).toBeTruthy();
    expect(dialog.textContent).toContain('dev@conference.example.org (XMPP), #dev:example.org (Matrix)');
    fireEvent.click(within(dialog).getByRole('button', {name: 'Cancel'}));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(api.calls('DELETE', '/api/v1/links/chan1')).toHaveLength(0);
    expect(screen.getByRole('row', {name: /Town Square/})).toBeTruthy();
});

test('Unlink, confirmed, deletes the link and the row goes', async () => {
    api.routes['DELETE /api/v1/links/chan1'] = () => {
        api.routes['GET /api/v1/links'] = {body: {links: []}};
        return {body: {unlinked: ['xmpp', 'matrix']}};
    };
    await renderLoaded();
    fireEvent.click(screen.getByRole('button', {name: 'Unlink Town Square'}));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', {name: 'Unlink'}));
    await screen.findByText(/No channel is linked yet/);
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(api.calls('DELETE', '/api/v1/links/chan1')).toHaveLength(1);
});

test('a refused unlink keeps the dialog open with the reason', async () => {
    api.routes['DELETE /api/v1/links/chan1'] = {status: 404, body: {error: 'this channel is not linked'}};
    await renderLoaded();
    fireEvent.click(screen.getByRole('button', {name: 'Unlink Town Square'}));
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', {name: 'Unlink'}));
    expect((await within(screen.getByRole('dialog')).findByRole('alert')).textContent).toBe('this channel is not linked');
});
