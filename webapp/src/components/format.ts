// Small formatting helpers shared by the admin view and the channel header.

const titles: Record<string, string> = {mattermost: 'Mattermost', xmpp: 'XMPP', matrix: 'Matrix', slack: 'Slack'};

/** The network's name as people know it. */
export function networkTitle(network: string): string {
    return titles[network] ?? network;
}

/** A time from the API as the reader's locale shows it, '—' when absent. */
export function formatTime(iso?: string): string {
    if (!iso) {
        return '—';
    }
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export type Tone = 'good' | 'warn' | 'bad' | 'off';

/** How alarming a connection state or link health is, for its badge's color. */
export function toneOf(state: string): Tone {
    switch (state) {
    case 'connected':
    case 'ok':
        return 'good';
    case 'connecting':
    case 'reconnecting':
    case 'degraded':
        return 'warn';
    case 'disabled':
    case 'archived':
        return 'off';
    default:
        return 'bad';
    }
}
