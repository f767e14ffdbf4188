/** Handler module that accepts every message as it is (for checks about the queue, not the work). */
import { definePipeline } from '@throughway/workers';

export default definePipeline({
  handleMessage(_processor, message) {
    return message;
  },
  handleBatch(_batcher, messages) {
    return messages;
  },
});
