import React from 'react';

import type {DoctorReport} from '../../api/types';
import Badge from '../badge';

/** The doctor's report: every check with pass/fail, what it found and, for a failure, the fix. */
export default function DoctorReportView({report}: {report: DoctorReport}) {
    const failed = report.checks.filter((c) => !c.passed).length;
    return (
        <div
            className='bridge-doctor-report'
            aria-label='Connection test report'
            style={{marginTop: 8}}
        >
            <p>
                <strong>{report.passed ? 'Every check passed' : `${failed} of ${report.checks.length} checks failed`}</strong>
                {typeof report.duration_ms === 'number' && ` (${(report.duration_ms / 1000).toFixed(1)} s)`}
            </p>
            <ul style={{listStyle: 'none', paddingLeft: 0}}>
                {report.checks.map((c) => (
                    <li
                        key={c.name}
                        className='bridge-doctor-check'
                        data-passed={c.passed}
                        style={{marginBottom: 6}}
                    >
                        <Badge tone={c.passed ? 'good' : 'bad'}>{c.passed ? 'pass' : 'fail'}</Badge>{' '}
                        <strong>{c.name}</strong>
                        {c.detail && <span>{': '}{c.detail}</span>}
                        {!c.passed && c.fix && (
                            <div
                                className='bridge-doctor-fix'
                                style={{marginLeft: 8, fontStyle: 'italic'}}
                            >
                                {'Fix: '}{c.fix}
                            </div>
                        )}
                    </li>
                ))}
            </ul>
        </div>
    );
}
