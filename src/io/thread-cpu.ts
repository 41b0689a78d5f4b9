// CPU seconds of this process's main thread (JavaScript, stream plumbing, AES) and of all its other
// threads together (libuv's pool: inflate, SHA-1, file writes and the kernel's page-cache work they
// cause; worker threads; V8's compiler and garbage collector), from /proc/self/task (Linux). libuv
// 1.46 names none of its threads, so the pool cannot be told from V8's helpers by name. With each
// stage's busy time this says whether the run waited on a core or on one stage. Threads that
// ended are not counted: measure while the work's threads are alive.
import fs from 'node:fs';

export interface ThreadCpu {
  readonly mainSeconds: number;
  readonly otherSeconds: number;
}

/** Clock ticks per second of /proc's utime and stime: USER_HZ, 100 on every Linux ABI. */
const USER_HZ = 100;

/** utime + stime of one task, in seconds (fields 14 and 15, counted after the `(comm)` field). */
function taskSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** This process's CPU time, main thread and the others, or undefined where /proc cannot tell. */
export function threadCpu(): ThreadCpu | undefined {
  try {
    const tasks = fs.readdirSync('/proc/self/task');
    let main = 0;
    let other = 0;
    for (const tid of tasks) {
      let seconds: number;
      try {
        seconds = taskSeconds(fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1'));
      } catch {
        continue; // the thread ended between the listing and the read
      }
      if (Number(tid) === process.pid) main += seconds;
      else other += seconds;
    }
    return { mainSeconds: main, otherSeconds: other };
  } catch {
    return undefined;
  }
}
