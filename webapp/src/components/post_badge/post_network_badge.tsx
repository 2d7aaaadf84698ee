import React, {useLayoutEffect, useRef, useState, useSyncExternalStore} from 'react';
import {createPortal} from 'react-dom';

import type {Store} from '../../types/mattermost-webapp';
import Badge from '../badge';
import {networkTitle} from '../format';

/**
 * The post prop the server part sets on every post it relays into
 * Mattermost (PropOrigin in server/bridge/mattermost): the network the
 * message came from.
 */
export const originProp = 'bridge_origin';

const remoteNetworks = new Set(['xmpp', 'matrix', 'slack']);

/** The part of the web app's Redux state read here. */
interface PostsState {
    entities?: {posts?: {posts?: Record<string, {props?: Record<string, unknown>} | undefined>}};
}

/** The network a post came from, or '' for a post made in Mattermost. */
export function postOrigin(state: unknown, postID: string): string {
    const origin = (state as PostsState)?.entities?.posts?.posts?.[postID]?.props?.[originProp];
    return typeof origin === 'string' && remoteNetworks.has(origin) ? origin : '';
}

/** What Mattermost's PostMessageAttachment slot hands the component. */
export interface PostAttachmentProps {
    postId: string;
}

/**
 * Builds the component registered with registerPostMessageAttachmentComponent:
 * on a post relayed from XMPP, Matrix or Slack it shows the network's badge.
 * Mattermost has no plugin slot in the post header, so the badge moves
 * itself beside the author's name (the header's name column, when the post
 * shows one) and otherwise stays under the message, where the slot is.
 */
export function makePostNetworkBadge(store: Store) {
    return function PostNetworkBadge({postId}: PostAttachmentProps) {
        const origin = useSyncExternalStore(store.subscribe, () => postOrigin(store.getState(), postId));
        const anchor = useRef<HTMLSpanElement>(null);
        const [nameColumn, setNameColumn] = useState<Element | null>(null);

        useLayoutEffect(() => {
            const post = anchor.current?.closest('.post');
            setNameColumn(origin ? post?.querySelector('.post__header .col__name') ?? null : null);
        }, [origin]);

        if (!origin) {
            return null;
        }
        const badge = (
            <span
                className='bridge-post-badge'
                style={{marginLeft: 6}}
                title={`Relayed from ${networkTitle(origin)} by the bridge`}
            >
                <Badge tone='off'>{networkTitle(origin)}</Badge>
            </span>
        );
        return <span ref={anchor}>{nameColumn ? createPortal(badge, nameColumn) : badge}</span>;
    };
}
