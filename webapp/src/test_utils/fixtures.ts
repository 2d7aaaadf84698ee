// Answers shaped as the REST contract says (README, "REST API").
import type {DoctorReport, LinksReport, NetworkStatus, StatusReport} from '../api/types';

export function networkStatus(over: Partial<NetworkStatus> = {}): NetworkStatus {
    return {
        network: 'xmpp',
        title: 'XMPP',
        enabled: true,
        state: 'connected',
        since: '2026-12-07T10:00:00Z',
        last_error: '',
        last_event: '2026-12-07T10:05:00Z',
        reconnect_attempts: 0,
        detail: '',
        queues: [],
        queue_depth: 0,
        relayed: {to_mattermost: 12, from_mattermost: 30},
        dropped: {to_mattermost: {too_large: 1}, from_mattermost: {}},
        remote_users: 5,
        ...over,
    };
}

export function statusReport(networks: NetworkStatus[] = [
    networkStatus({network: 'mattermost', title: 'Mattermost'}),
    networkStatus(),
    networkStatus({network: 'matrix', title: 'Matrix', state: 'failed', last_error: 'homeserver unreachable: connection refused', queue_depth: 7}),
    networkStatus({network: 'slack', title: 'Slack', enabled: false, state: 'disabled'}),
]): StatusReport {
    return {networks, links: 1, node: ''};
}

export function linksReport(): LinksReport {
    return {
        links: [{
            channel_id: 'chan1',
            channel_name: 'town-square',
            channel_display_name: 'Town Square',
            team_id: 'team1',
            team_name: 'eng',
            since: '2026-12-07T10:00:00Z',
            rooms: [
                {network: 'xmpp', room: 'dev@conference.example.org', name: 'Dev', state: 'connected', archived: false, last_in: '2026-12-07T10:04:00Z', last_out: '2026-12-07T10:05:00Z'},
                {network: 'matrix', room: '#dev:example.org', name: 'Dev', state: 'failed', archived: false},
            ],
            last_in: '2026-12-07T10:04:00Z',
            last_out: '2026-12-07T10:05:00Z',
            health: 'degraded',
        }],
    };
}

export function doctorReport(): DoctorReport {
    return {
        network: 'xmpp',
        passed: false,
        started: '2026-12-07T10:06:00Z',
        duration_ms: 1234,
        checks: [
            {name: 'DNS', passed: true, detail: 'example.org resolves to 127.0.0.1', fix: '', duration_ms: 3},
            {name: 'Authentication', passed: false, detail: 'SASL SCRAM-SHA-1-PLUS refused: not-authorized', fix: 'Set the bot password in the System Console to the account\'s password.', duration_ms: 40},
        ],
    };
}
