;; Eight memories of 16 MiB each (128 MiB in all): each is small, the container total is not.
(module
  (memory 256) (memory 256) (memory 256) (memory 256)
  (memory 256) (memory 256) (memory 256) (memory 256)
  (func (export "_start")))
