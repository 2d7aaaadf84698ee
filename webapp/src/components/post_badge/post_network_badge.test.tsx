import {act, render, screen} from '@testing-library/react';
import React from 'react';

import type {Store} from '../../types/mattermost-webapp';

import {makePostNetworkBadge} from './post_network_badge';

// A store holding posts as the web app's Redux state does.
function fakeStore(posts: Record<string, {props?: Record<string, unknown>}>) {
    let state = {entities: {posts: {posts}}};
    const listeners = new Set<() => void>();
    const store: Store & {setPosts: (p: typeof posts) => void} = {
        dispatch: (a) => a,
        getState: () => state,
        subscribe: (l) => {
            listeners.add(l);
            return () => listeners.delete(l);
        },
        setPosts: (p) => {
            state = {entities: {posts: {posts: p}}};
            listeners.forEach((l) => l());
        },
    };
    return store;
}

const posts = {
    fromXMPP: {props: {bridge_origin: 'xmpp', bridge_origin_id: 'abc'}},
    fromMatrix: {props: {bridge_origin: 'matrix'}},
    local: {props: {}},
    odd: {props: {bridge_origin: '<b>evil</b>'}},
};

test('a post relayed from a network shows its badge', () => {
    const Badge = makePostNetworkBadge(fakeStore(posts));
    render(<Badge postId='fromXMPP'/>);
    expect(screen.getByText('XMPP').closest('.bridge-post-badge')?.getAttribute('title')).toBe('Relayed from XMPP by the bridge');
});

test.each(['local', 'odd', 'missing'])('post %s shows nothing', (id) => {
    const Badge = makePostNetworkBadge(fakeStore(posts));
    const {container} = render(<Badge postId={id}/>);
    expect(container.innerHTML).toBe('');
});

test('the badge goes beside the author\'s name when the post shows one', () => {
    const Badge = makePostNetworkBadge(fakeStore(posts));
    // The post's markup as Mattermost renders it: a header with the name
    // column, and the body where the attachment slot is.
    document.body.innerHTML = '<div class="post"><div class="post__header"><div class="col col__name"><button>carol</button></div></div><div class="post__body" id="slot"></div></div>';
    render(<Badge postId='fromMatrix'/>, {container: document.getElementById('slot') as HTMLElement});
    const name = document.querySelector('.col__name') as HTMLElement;
    expect(name.textContent).toBe('carolMatrix');
    expect(document.getElementById('slot')?.textContent).toBe('');
});

test('a post that arrives later gets its badge', () => {
    const store = fakeStore({});
    const Badge = makePostNetworkBadge(store);
    const {container} = render(<Badge postId='fromXMPP'/>);
    expect(container.innerHTML).toBe('');
    act(() => store.setPosts(posts));
    expect(screen.getByText('XMPP')).toBeTruthy();
});
