import {useCallback, useEffect, useRef, useState} from 'react';

import {messageOf} from './client';

export interface Polled<T> {
    /** The latest answer; kept while a later poll fails, so the page does not blank out. */
    data?: T;
    /** Why the latest poll failed, '' when it succeeded. */
    error: string;
    /** Loads again now, after any load in flight (which may predate an action that changed what is shown). */
    refresh: () => Promise<void>;
}

/**
 * Calls load now and every intervalMs while the component is mounted, so
 * the page follows the bridge without a reload. Loads never overlap (a
 * tick while one is in flight is skipped), and nothing is set after unmount.
 */
export function usePolling<T>(load: () => Promise<T>, intervalMs: number): Polled<T> {
    const [data, setData] = useState<T>();
    const [error, setError] = useState('');
    const mounted = useRef(true);
    const inFlight = useRef<Promise<void> | null>(null);
    const loadRef = useRef(load);
    loadRef.current = load;

    const once = useCallback(async () => {
        try {
            const next = await loadRef.current();
            if (mounted.current) {
                setData(next);
                setError('');
            }
        } catch (e) {
            if (mounted.current) {
                setError(messageOf(e));
            }
        }
    }, []);

    const refresh = useCallback(() => {
        const p = (inFlight.current ?? Promise.resolve()).then(once);
        inFlight.current = p;
        void p.finally(() => {
            if (inFlight.current === p) {
                inFlight.current = null;
            }
        });
        return p;
    }, [once]);

    useEffect(() => {
        mounted.current = true;
        void refresh();
        const timer = window.setInterval(() => {
            if (!inFlight.current) {
                void refresh();
            }
        }, intervalMs);
        return () => {
            mounted.current = false;
            window.clearInterval(timer);
        };
    }, [refresh, intervalMs]);

    return {data, error, refresh};
}
