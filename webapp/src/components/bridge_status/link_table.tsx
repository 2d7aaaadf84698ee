import React, {useState} from 'react';

import {messageOf, unlinkChannel} from '../../api/client';
import type {Link} from '../../api/types';
import Badge from '../badge';
import ErrorAlert from '../error_alert';
import {formatTime, networkTitle, toneOf} from '../format';

function channelLabel(l: Link): string {
    return l.channel_display_name || l.channel_name || l.channel_id;
}

/** Asks before unlinking: an unlinked channel stops relaying at once. */
function ConfirmUnlink({link, busy, error, onConfirm, onCancel}: {
    link: Link;
    busy: boolean;
    error: string;
    onConfirm: () => void;
    onCancel: () => void;
}) {
    return (
        <div style={{position: 'fixed', inset: 0, background: 'rgba(0, 0, 0, 0.5)', zIndex: 1000, display: 'flex', alignItems: 'center', justifyContent: 'center'}}>
            <div
                role='dialog'
                aria-modal='true'
                aria-labelledby='bridge-unlink-title'
                style={{background: '#fff', color: '#3f4350', borderRadius: 8, padding: 24, maxWidth: 480}}
            >
                <h3 id='bridge-unlink-title'>{`Unlink ~${channelLabel(link)}?`}</h3>
                <p>
                    {'Messages stop flowing between this channel and '}
                    {link.rooms.map((r) => `${r.room} (${networkTitle(r.network)})`).join(', ')}
                    {'. The messages already relayed stay where they are. You can link it again with the slash commands.'}
                </p>
                {error && <ErrorAlert>{error}</ErrorAlert>}
                <div style={{display: 'flex', justifyContent: 'flex-end', gap: 8}}>
                    <button
                        type='button'
                        className='btn btn-tertiary'
                        onClick={onCancel}
                        disabled={busy}
                    >
                        {'Cancel'}
                    </button>
                    <button
                        type='button'
                        className='btn btn-danger'
                        onClick={onConfirm}
                        disabled={busy}
                    >
                        {busy ? 'Unlinking…' : 'Unlink'}
                    </button>
                </div>
            </div>
        </div>
    );
}

/**
 * Every linked channel: its team, the remote rooms with their states, its
 * health, the last message each way, and an Unlink button that asks first.
 */
export default function LinkTable({links, onUnlinked}: {links: Link[]; onUnlinked: () => void}) {
    const [asking, setAsking] = useState<Link>();
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState('');

    const confirm = async () => {
        if (!asking) {
            return;
        }
        setBusy(true);
        setError('');
        try {
            await unlinkChannel(asking.channel_id);
            setAsking(undefined);
            onUnlinked();
        } catch (e) {
            setError(messageOf(e));
        } finally {
            setBusy(false);
        }
    };

    if (links.length === 0) {
        return <p className='bridge-no-links'>{'No channel is linked yet. Link one with /xmppbridge, /matrixbridge or /slackbridge in the channel.'}</p>;
    }
    return (
        <>
            <table
                className='table bridge-link-table'
                aria-label='Linked channels'
            >
                <thead>
                    <tr>
                        <th>{'Channel'}</th>
                        <th>{'Team'}</th>
                        <th>{'Remote rooms'}</th>
                        <th>{'Health'}</th>
                        <th>{'Last message in'}</th>
                        <th>{'Last message out'}</th>
                        <th/>
                    </tr>
                </thead>
                <tbody>
                    {links.map((l) => (
                        <tr
                            key={l.channel_id}
                            data-channel-id={l.channel_id}
                        >
                            <td>{channelLabel(l)}</td>
                            <td>{l.team_name}</td>
                            <td>
                                {l.rooms.map((r) => (
                                    <div key={`${r.network} ${r.room}`}>
                                        <Badge tone={r.archived ? 'off' : toneOf(r.state)}>{networkTitle(r.network)}</Badge>{' '}
                                        <span>{r.room}</span>
                                        {r.name && r.name !== r.room && <span>{` (${r.name})`}</span>}
                                        {r.archived && <span>{' (archived)'}</span>}
                                    </div>
                                ))}
                            </td>
                            <td><Badge tone={toneOf(l.health)}>{l.health}</Badge></td>
                            <td>{formatTime(l.last_in)}</td>
                            <td>{formatTime(l.last_out)}</td>
                            <td>
                                <button
                                    type='button'
                                    className='btn btn-tertiary btn-sm'
                                    aria-label={`Unlink ${channelLabel(l)}`}
                                    onClick={() => {
                                        setError('');
                                        setAsking(l);
                                    }}
                                >
                                    {'Unlink'}
                                </button>
                            </td>
                        </tr>
                    ))}
                </tbody>
            </table>
            {asking && (
                <ConfirmUnlink
                    link={asking}
                    busy={busy}
                    error={error}
                    onConfirm={() => void confirm()}
                    onCancel={() => setAsking(undefined)}
                />
            )}
        </>
    );
}
