import React, {useEffect, useState} from 'react';

import {getChannelLinks} from '../../api/client';
import type {ChannelLinks} from '../../api/types';
import Badge from '../badge';
import {networkTitle, toneOf} from '../format';

/** How often an open channel's indicator asks again, so a state change shows without switching channels. */
export const indicatorPollInterval = 30_000;

/** What Mattermost's ChannelHeaderIcon slot hands the component (the part read here). */
export interface ChannelHeaderIconProps {
    channel?: {id: string};
}

// worst is the state that tells most about a network's rooms: one broken
// room is worth knowing about even when the others are fine.
function worst(states: string[]): string {
    const rank = {bad: 3, warn: 2, off: 1, good: 0};
    return states.reduce((a, b) => (rank[toneOf(b)] > rank[toneOf(a)] ? b : a), states[0]);
}

/**
 * The channel header's bridge indicator: on a linked channel, a button
 * naming the networks the channel is bridged to, colored by their health,
 * that opens a popover listing the remote rooms. Nothing on a channel that
 * is not linked, or that this person may not look at.
 */
export default function ChannelBridgeIndicator({channel, pollMs = indicatorPollInterval}: ChannelHeaderIconProps & {pollMs?: number}) {
    const channelID = channel?.id ?? '';
    const [links, setLinks] = useState<ChannelLinks>();
    const [open, setOpen] = useState(false);

    useEffect(() => {
        setLinks(undefined);
        setOpen(false);
        if (!channelID) {
            return undefined;
        }
        let live = true;
        const load = async () => {
            try {
                const next = await getChannelLinks(channelID);
                if (live) {
                    setLinks(next);
                }
            } catch {
                // Not linked (404), not allowed (403) or unreachable: the
                // header shows nothing rather than an error to every member.
                if (live) {
                    setLinks(undefined);
                }
            }
        };
        void load();
        const timer = window.setInterval(() => void load(), pollMs);
        return () => {
            live = false;
            window.clearInterval(timer);
        };
    }, [channelID, pollMs]);

    if (!links || links.channel_id !== channelID || links.rooms.length === 0) {
        return null;
    }
    const byNetwork = new Map<string, string[]>();
    for (const r of links.rooms) {
        byNetwork.set(r.network, [...(byNetwork.get(r.network) ?? []), r.state]);
    }
    const summary = [...byNetwork].map(([n, states]) => `${networkTitle(n)}: ${worst(states)}`).join(', ');

    return (
        <span
            className='bridge-channel-indicator'
            style={{position: 'relative', display: 'inline-flex'}}
        >
            <button
                type='button'
                className='channel-header__icon btn btn-icon btn-xs'
                aria-label={`Bridged to ${summary}`}
                aria-expanded={open}
                title={`Bridged to ${summary}`}
                onClick={() => setOpen(!open)}
                style={{display: 'inline-flex', alignItems: 'center', gap: 4, width: 'auto', padding: '0 6px'}}
            >
                {[...byNetwork].map(([n, states]) => (
                    <Badge
                        key={n}
                        tone={toneOf(worst(states))}
                        title={`${networkTitle(n)}: ${worst(states)}`}
                    >
                        {networkTitle(n)}
                    </Badge>
                ))}
            </button>
            {open && (
                <div
                    role='dialog'
                    aria-label='Bridged rooms'
                    className='bridge-channel-popover popover'
                    style={{position: 'absolute', top: '100%', left: 0, zIndex: 100, display: 'block', minWidth: 280, maxWidth: 420, padding: 12, background: 'var(--center-channel-bg, #fff)', color: 'var(--center-channel-color, #3f4350)', border: '1px solid rgba(63, 67, 80, 0.16)', borderRadius: 4, boxShadow: '0 8px 24px rgba(0, 0, 0, 0.12)'}}
                >
                    <strong>{'This channel is bridged to'}</strong>
                    <ul style={{listStyle: 'none', paddingLeft: 0, margin: '8px 0 0'}}>
                        {links.rooms.map((r) => (
                            <li
                                key={`${r.network} ${r.room}`}
                                style={{marginBottom: 4}}
                            >
                                <Badge tone={toneOf(r.state)}>{networkTitle(r.network)}</Badge>{' '}
                                <span>{r.name && r.name !== r.room ? `${r.name} (${r.room})` : r.room}</span>{' '}
                                <span style={{fontSize: 12, opacity: 0.72}}>{r.state}</span>
                            </li>
                        ))}
                    </ul>
                </div>
            )}
        </span>
    );
}
