// A verification thread that cannot start (a module that fails to load, say): the pool must verify
// every commit on the calling thread instead, and give up on threads after a few such deaths.
throw new Error('this verification thread cannot start')
