import {fireEvent, render, screen, waitFor, within} from '@testing-library/react';
import React from 'react';

import type {FakeAPI} from '../../test_utils/fake_api';
import {installFakeAPI} from '../../test_utils/fake_api';

import ChannelBridgeIndicator from './channel_indicator';

let api: FakeAPI;

const linked = {
    channel_id: 'linked1',
    rooms: [
        {network: 'xmpp', room: 'dev@conference.example.org', name: 'Dev', state: 'connected'},
        {network: 'matrix', room: '#dev:example.org', name: '#dev:example.org', state: 'disconnected'},
    ],
};

beforeEach(() => {
    window.basename = '';
    api = installFakeAPI({
        'GET /api/v1/channels/linked1/links': {body: linked},
        'GET /api/v1/channels/plain1/links': {status: 404, body: {error: 'this channel is not linked'}},
        'GET /api/v1/channels/empty1/links': {body: {channel_id: 'empty1', rooms: []}},
        'GET /api/v1/channels/secret1/links': {status: 403, body: {error: 'you cannot read this channel'}},
    });
});

test('on a linked channel it names the networks with their health', async () => {
    render(<ChannelBridgeIndicator channel={{id: 'linked1'}}/>);
    const button = await screen.findByRole('button', {name: 'Bridged to XMPP: connected, Matrix: disconnected'});
    expect(within(button).getByText('XMPP').getAttribute('data-tone')).toBe('good');
    expect(within(button).getByText('Matrix').getAttribute('data-tone')).toBe('bad');
    expect(api.calls('GET', '/api/v1/channels/linked1/links')[0].headers['X-Requested-With']).toBe('XMLHttpRequest');
});

test('clicking it opens a popover listing the remote rooms', async () => {
    render(<ChannelBridgeIndicator channel={{id: 'linked1'}}/>);
    const button = await screen.findByRole('button', {name: /^Bridged to/});
    expect(screen.queryByRole('dialog', {name: 'Bridged rooms'})).toBeNull();
    fireEvent.click(button);
    const popover = screen.getByRole('dialog', {name: 'Bridged rooms'});
    const items = within(popover).getAllByRole('listitem');
    expect(items.map((i) => i.textContent)).toEqual([
        'XMPP Dev (dev@conference.example.org) connected',
        'Matrix #dev:example.org disconnected',
    ]);
    fireEvent.click(button);
    expect(screen.queryByRole('dialog', {name: 'Bridged rooms'})).toBeNull();
});

test.each(['plain1', 'empty1', 'secret1'])('nothing shows on channel %s (not linked, no rooms, not allowed)', async (id) => {
    const {container} = render(<ChannelBridgeIndicator channel={{id}}/>);
    await waitFor(() => expect(api.calls('GET', `/api/v1/channels/${id}/links`)).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(container.innerHTML).toBe('');
});

test('switching to an unlinked channel hides it at once', async () => {
    const {rerender, container} = render(<ChannelBridgeIndicator channel={{id: 'linked1'}}/>);
    await screen.findByRole('button', {name: /^Bridged to/});
    rerender(<ChannelBridgeIndicator channel={{id: 'plain1'}}/>);
    expect(container.innerHTML).toBe('');
    await waitFor(() => expect(api.calls('GET', '/api/v1/channels/plain1/links')).toHaveLength(1));
    expect(container.innerHTML).toBe('');
});

test('it follows a state change while the channel stays open', async () => {
    render(
        <ChannelBridgeIndicator
            channel={{id: 'linked1'}}
            pollMs={30}
        />,
    );
    await screen.findByRole('button', {name: /Matrix: disconnected/});
    api.routes['GET /api/v1/channels/linked1/links'] = {body: {...linked, rooms: linked.rooms.map((r) => ({...r, state: 'connected'}))}};
    await screen.findByRole('button', {name: 'Bridged to XMPP: connected, Matrix: connected'});
});
