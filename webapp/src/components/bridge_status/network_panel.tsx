import React, {useState} from 'react';

import {messageOf, testNetwork} from '../../api/client';
import type {DoctorReport, NetworkStatus} from '../../api/types';
import Badge from '../badge';
import ErrorAlert from '../error_alert';
import {formatTime, toneOf} from '../format';

import DoctorReportView from './doctor_report';

function sum(counts: Record<string, number> | undefined): number {
    return Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
}

// reasons lists drop reasons with their counts, e.g. "too_large 1".
function reasons(counts: Record<string, number> | undefined): string {
    return Object.entries(counts ?? {}).map(([r, n]) => `${r.replace(/_/g, ' ')} ${n}`).join(', ');
}

function Counter({label, value, detail}: {label: string; value: number; detail?: string}) {
    return (
        <div style={{marginRight: 24}}>
            <div style={{fontSize: 12, opacity: 0.72}}>{label}</div>
            <div
                aria-label={label}
                style={{fontSize: 18, fontWeight: 600}}
            >
                {value}
            </div>
            {detail && <div style={{fontSize: 12}}>{detail}</div>}
        </div>
    );
}

/**
 * One network's panel: its connection state since when, the last error,
 * what it relayed and dropped each way, its queue, and for the remote
 * networks a "Test connection" button that runs the network's doctor.
 */
export default function NetworkPanel({status}: {status: NetworkStatus}) {
    const [testing, setTesting] = useState(false);
    const [report, setReport] = useState<DoctorReport>();
    const [testError, setTestError] = useState('');
    // Mattermost's own side has no doctor, and its directions read the
    // other way round: what it posted, what it sent out.
    const mattermost = status.network === 'mattermost';
    const testable = !mattermost;

    const runTest = async () => {
        setTesting(true);
        setTestError('');
        setReport(undefined);
        try {
            setReport(await testNetwork(status.network));
        } catch (e) {
            setTestError(messageOf(e));
        } finally {
            setTesting(false);
        }
    };

    return (
        <section
            className='bridge-network-panel'
            data-network={status.network}
            aria-label={`${status.title} bridge`}
            style={{border: '1px solid rgba(63, 67, 80, 0.16)', borderRadius: 4, padding: 16, marginBottom: 12}}
        >
            <div style={{display: 'flex', alignItems: 'center', gap: 8, flexWrap: 'wrap'}}>
                <h4 style={{margin: 0}}>{status.title}</h4>
                <Badge tone={toneOf(status.state)}>{status.state}</Badge>
                {status.since && <span style={{fontSize: 12}}>{'since '}{formatTime(status.since)}</span>}
                {status.reconnect_attempts > 0 && (
                    <span style={{fontSize: 12}}>{`${status.reconnect_attempts} reconnect attempts`}</span>
                )}
            </div>
            {status.detail && <p style={{marginTop: 8}}>{status.detail}</p>}
            {status.last_error && (
                <p
                    className='bridge-last-error'
                    style={{marginTop: 8, color: '#d24b4e'}}
                >
                    {'Last error: '}{status.last_error}
                </p>
            )}
            <div style={{display: 'flex', flexWrap: 'wrap', marginTop: 12}}>
                <Counter
                    label={mattermost ? 'Posted in Mattermost' : 'Relayed to Mattermost'}
                    value={status.relayed.to_mattermost}
                />
                <Counter
                    label={mattermost ? 'Sent out of Mattermost' : `Relayed to ${status.title}`}
                    value={status.relayed.from_mattermost}
                />
                <Counter
                    label='Dropped'
                    value={sum(status.dropped.to_mattermost) + sum(status.dropped.from_mattermost)}
                    detail={[reasons(status.dropped.to_mattermost), reasons(status.dropped.from_mattermost)].filter(Boolean).join('; ')}
                />
                <Counter
                    label='Queued'
                    value={status.queue_depth}
                />
                <Counter
                    label='Remote users'
                    value={status.remote_users}
                />
            </div>
            <div style={{fontSize: 12, marginTop: 8}}>{'Last message: '}{formatTime(status.last_event)}</div>
            {testable && (
                <div style={{marginTop: 12}}>
                    <button
                        type='button'
                        className='btn btn-tertiary'
                        disabled={testing || !status.enabled}
                        title={status.enabled ? undefined : `Enable ${status.title} and save the settings first.`}
                        onClick={() => void runTest()}
                    >
                        {testing ? 'Testing…' : 'Test connection'}
                    </button>
                    {testError && <ErrorAlert>{testError}</ErrorAlert>}
                    {report && <DoctorReportView report={report}/>}
                </div>
            )}
        </section>
    );
}
