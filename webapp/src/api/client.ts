import manifest from '../manifest';

import type {ChannelLinks, DoctorReport, LinksReport, Network, StatusReport, UnlinkResult} from './types';

/**
 * The plugin's base URL as the Mattermost web app reaches it: relative to
 * the page (a server under a subpath sets window.basename), so whatever
 * address the person uses works even when it differs from the Site URL.
 */
export function pluginURL(path: string): string {
    const base = typeof window.basename === 'string' ? window.basename.replace(/\/+$/, '') : '';
    return `${base}/plugins/${manifest.id}${path}`;
}

/** What went wrong, from anything a promise may reject with. */
export function messageOf(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}

/** An answer other than 2xx, carrying the server's message. */
export class APIError extends Error {
    constructor(public readonly status: number, message: string) {
        super(message);
        this.name = 'APIError';
    }
}

/**
 * Fetches a plugin URL the way Mattermost's own client (Client4) does: with
 * the session cookie, and X-Requested-With so that the server accepts that
 * cookie on a request made by script (its CSRF protection).
 */
export async function pluginFetch(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    try {
        res = await fetch(pluginURL(path), {
            ...init,
            credentials: 'same-origin',
            headers: {'X-Requested-With': 'XMLHttpRequest', ...init.headers},
        });
    } catch (e) {
        throw new APIError(0, `Could not reach the server: ${messageOf(e)}`);
    }
    if (!res.ok) {
        throw new APIError(res.status, await errorMessage(res));
    }
    return res;
}

// errorMessage is the API's {"error": "..."}, else the body's text (a
// proxy's or an older plugin's plain answer), else the status line.
async function errorMessage(res: Response): Promise<string> {
    const text = (await res.text().catch(() => '')).trim();
    try {
        const body: unknown = JSON.parse(text);
        if (body && typeof body === 'object' && typeof (body as {error?: unknown}).error === 'string') {
            return (body as {error: string}).error;
        }
    } catch {
        // Not JSON: the text itself says what went wrong.
    }
    return text || `The server answered ${res.status} ${res.statusText}.`.replace(' .', '.');
}

async function getJSON<T>(path: string, init?: RequestInit): Promise<T> {
    const res = await pluginFetch(path, init);
    return (await res.json()) as T;
}

// checked fails with a clear error when an answer lacks the list the page
// shows (a server part older or newer than this web app, a proxy's page),
// instead of the page breaking on it.
function checked<T>(answer: T, list: keyof T, what: string): T {
    if (!answer || typeof answer !== 'object' || !Array.isArray(answer[list])) {
        throw new APIError(200, `The server's answer has no list of ${what}: is the plugin's server part the same version as its web app?`);
    }
    return answer;
}

export const getStatus = async () => checked(await getJSON<StatusReport>('/api/v1/status'), 'networks', 'networks');

export const getLinks = async () => checked(await getJSON<LinksReport>('/api/v1/links'), 'links', 'links');

export const getChannelLinks = async (channelID: string) =>
    checked(await getJSON<ChannelLinks>(`/api/v1/channels/${encodeURIComponent(channelID)}/links`), 'rooms', 'rooms');

export const testNetwork = async (network: Network) =>
    checked(await getJSON<DoctorReport>(`/api/v1/networks/${encodeURIComponent(network)}/test`, {method: 'POST'}), 'checks', 'checks');

export const unlinkChannel = (channelID: string) =>
    getJSON<UnlinkResult>(`/api/v1/links/${encodeURIComponent(channelID)}`, {method: 'DELETE'});
